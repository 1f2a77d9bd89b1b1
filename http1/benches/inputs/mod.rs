//! The request heads both parser benchmarks measure, so that they measure the same bytes.

/// The smallest valid HTTP/1.1 request.
pub const SMALL: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

/// A Chrome navigation, 841 bytes.
pub const BROWSER: &[u8] = b"GET /articles/2024/http-request-smuggling-explained?utm_source=newsletter&utm_medium=email HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/articles/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n\
Cookie: session=3f9a1c2e8b7d4e6f; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n\r\n";

/// An API request with 60 custom fields.
pub fn many_headers() -> Vec<u8> {
    let mut v =
        b"POST /api/v1/items HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\n".to_vec();
    for i in 0..60 {
        v.extend_from_slice(
            format!("X-Custom-Header-{i}: value-{i}-abcdefghijklmnop\r\n").as_bytes(),
        );
    }
    v.extend_from_slice(b"\r\n");
    v
}
