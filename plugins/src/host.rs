//! The host side of the proxy-wasm ABI (0.2.1, with the 0.2.0 names that differ) and the
//! WASI preview-1 functions the SDKs' runtimes import, bound into one wasmtime `Linker`.
//!
//! Every function reads and writes the guest's memory with bounds checks: a bad pointer is
//! `InvalidMemoryAccess` (proxy-wasm) or `EFAULT` (WASI), never a host fault. Data handed to
//! the guest is copied into memory the guest allocates itself (`proxy_on_memory_allocate`, or
//! `malloc` for 0.2.0 modules), which the guest frees.

use crate::abi::{self, Status};
use crate::core::{self, CoreShared, Queue, MAX_QUEUE_ITEMS, MAX_SHARED_BYTES, MAX_SHARED_KEYS};
use crate::metrics::{self, MetricKind};
use crate::stream::{Callout, CalloutResponse, LocalReply, StreamData};
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use wasmtime::{Caller, Linker, Memory, StoreLimits, TypedFunc};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The state of one instance's store.
pub(crate) struct Host {
    pub(crate) limits: StoreLimits,
    pub(crate) memory: Option<Memory>,
    pub(crate) alloc: Option<TypedFunc<i32, i32>>,
    /// The plugin configuration and the file name (not the plugin itself: per-core pools hold
    /// instances, and must not keep a plugin that no pipeline uses alive).
    pub(crate) config: Arc<[u8]>,
    pub(crate) name: Arc<str>,
    pub(crate) core: Rc<CoreShared>,
    /// This instance's id among its core's instances (shared queue owners).
    pub(crate) vm_id: u64,
    /// The data of the stream whose callback runs (swapped in and out around each call).
    pub(crate) stream: Box<StreamData>,
    /// The response of the callout whose callback runs.
    pub(crate) call_response: Option<CalloutResponse>,
    /// Callouts asked for during the current call, and the next token.
    pub(crate) callouts: Vec<Callout>,
    pub(crate) next_token: u32,
    /// `proxy_set_tick_period_milliseconds` (0: no ticks).
    pub(crate) tick_ms: u32,
    /// Metrics this instance defined, by id.
    pub(crate) metrics: Vec<(u32, Arc<AtomicI64>)>,
    /// Partial lines written to stdout and stderr (WASI `fd_write`), logged line by line.
    pub(crate) out_line: Vec<u8>,
    /// Reused for data copied into the guest.
    pub(crate) scratch: Vec<u8>,
    /// On a CPU clock: the thread's ticks when the current call began (see `budget`).
    pub(crate) call_began: u64,
}

type C<'a> = Caller<'a, Host>;
type R = wasmtime::Result<i32>;

fn ok(s: Status) -> R {
    Ok(s as i32)
}

fn range(len: usize, ptr: i32, size: i32) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(size as u32 as usize)?;
    (end <= len).then_some(start..end)
}

/// The guest's bytes at `ptr..ptr+size`, copied.
fn read(c: &mut C<'_>, ptr: i32, size: i32) -> Option<Vec<u8>> {
    let m = c.data().memory?;
    let data = m.data(&*c);
    range(data.len(), ptr, size).map(|r| data[r].to_vec())
}

fn write_bytes(c: &mut C<'_>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(m) = c.data().memory else {
        return false;
    };
    let data = m.data_mut(&mut *c);
    match range(data.len(), ptr, bytes.len() as i32) {
        Some(r) => {
            data[r].copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn write_u32(c: &mut C<'_>, ptr: i32, v: u32) -> bool {
    write_bytes(c, ptr, &v.to_le_bytes())
}

fn write_u64(c: &mut C<'_>, ptr: i32, v: u64) -> bool {
    write_bytes(c, ptr, &v.to_le_bytes())
}

/// Copies `bytes` into memory the guest allocates and writes its address and size at
/// `ptr_out` and `size_out`.
fn give(c: &mut C<'_>, bytes: &[u8], ptr_out: i32, size_out: i32) -> R {
    let Some(alloc) = c.data().alloc.clone() else {
        return ok(Status::InternalFailure);
    };
    let p = alloc.call(&mut *c, bytes.len() as i32)?;
    if p == 0 && !bytes.is_empty() {
        return ok(Status::InternalFailure);
    }
    if !write_bytes(c, p, bytes)
        || !write_u32(c, ptr_out, p as u32)
        || !write_u32(c, size_out, bytes.len() as u32)
    {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

/// [`give`] of bytes built from the host's state into its scratch buffer.
fn give_with(
    c: &mut C<'_>,
    ptr_out: i32,
    size_out: i32,
    fill: impl FnOnce(&mut Host, &mut Vec<u8>) -> Status,
) -> R {
    let mut buf = std::mem::take(&mut c.data_mut().scratch);
    buf.clear();
    let s = fill(c.data_mut(), &mut buf);
    let r = if s == Status::Ok {
        give(c, &buf, ptr_out, size_out)
    } else {
        ok(s)
    };
    c.data_mut().scratch = buf;
    r
}

fn map(h: &mut Host, t: i32) -> Option<&Pairs> {
    Some(match t {
        abi::map::REQUEST_HEADERS => h.stream.request_map(),
        abi::map::REQUEST_TRAILERS => &h.stream.request_trailers,
        abi::map::RESPONSE_HEADERS => h.stream.response_map(),
        abi::map::RESPONSE_TRAILERS => &h.stream.response_trailers,
        abi::map::CALL_RESPONSE_HEADERS => &h.call_response.as_ref()?.headers,
        abi::map::CALL_RESPONSE_TRAILERS => &h.call_response.as_ref()?.trailers,
        _ => return None,
    })
}

/// A map the plugin may change, marked changed, with the name of the field it changes
/// (`None`: the whole map). Callout responses are read-only.
fn map_mut<'h>(h: &'h mut Host, t: i32, name: Option<&[u8]>) -> Option<&'h mut Pairs> {
    let s = &mut h.stream;
    Some(match t {
        abi::map::REQUEST_HEADERS => {
            s.request_headers_changed = true;
            s.request_map()
        }
        abi::map::REQUEST_TRAILERS => &mut s.request_trailers,
        abi::map::RESPONSE_HEADERS => {
            s.response_headers_changed = true;
            s.touch_response(name);
            s.response_map()
        }
        abi::map::RESPONSE_TRAILERS => &mut s.response_trailers,
        _ => return None,
    })
}

fn buffer(h: &Host, t: i32) -> Option<&[u8]> {
    Some(match t {
        abi::buffer::REQUEST_BODY => &h.stream.request_body,
        abi::buffer::RESPONSE_BODY => &h.stream.response_body,
        abi::buffer::CALL_RESPONSE_BODY => &h.call_response.as_ref()?.body,
        abi::buffer::VM_CONFIGURATION => &[],
        abi::buffer::PLUGIN_CONFIGURATION => &h.config,
        _ => return None,
    })
}

fn lower_eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The value of a property path (segments separated by NUL), as Envoy encodes it: strings
/// as their bytes, integers as 8 bytes little-endian.
fn property(h: &mut Host, path: &[u8], out: &mut Vec<u8>) -> Status {
    if let Some((_, v)) = h.stream.props.custom.iter().find(|(k, _)| k == path) {
        out.extend_from_slice(v);
        return Status::Ok;
    }
    let p = &h.stream.props;
    let segs: Vec<&[u8]> = path.split(|&b| b == 0).collect();
    let int = |out: &mut Vec<u8>, v: i64| out.extend_from_slice(&v.to_le_bytes());
    match segs.as_slice() {
        [b"request", b"path"] => out.extend_from_slice(&p.path),
        [b"request", b"url_path"] => out.extend_from_slice(p.url_path()),
        [b"request", b"host"] => out.extend_from_slice(&p.host),
        [b"request", b"method"] => out.extend_from_slice(&p.method),
        [b"request", b"scheme"] => out.extend_from_slice(p.scheme.as_bytes()),
        [b"request", b"protocol"] => out.extend_from_slice(p.protocol.as_bytes()),
        [b"request", b"query"] => out.extend_from_slice(p.query()),
        [b"request", b"id"] => out.extend_from_slice(&p.request_id),
        [b"request", b"headers", name] => {
            match h
                .stream
                .request_map()
                .iter()
                .find(|(k, _)| lower_eq(k, name))
            {
                Some((_, v)) => out.extend_from_slice(v),
                None => return Status::NotFound,
            }
        }
        [b"source", b"address"] => match p.client {
            Some(a) => out.extend_from_slice(a.to_string().as_bytes()),
            None => return Status::NotFound,
        },
        [b"source", b"port"] => match p.client {
            Some(a) => int(out, a.port() as i64),
            None => return Status::NotFound,
        },
        [b"response", b"code"] => match p.response_code {
            Some(c) => int(out, c as i64),
            None => return Status::NotFound,
        },
        [b"plugin_name"] => out.extend_from_slice(h.name.as_bytes()),
        [b"plugin_root_id"] | [b"plugin_vm_id"] => {}
        [b"route_name"] | [b"bext", b"route"] => out.extend_from_slice(p.route.as_bytes()),
        _ => return Status::NotFound,
    }
    Status::Ok
}

/// The (params, results) of every function the host provides, `i` for i32 and `I` for i64:
/// what `bext check` compares a module's imports with.
pub(crate) fn provides(module: &str, name: &str) -> Option<(&'static str, &'static str)> {
    let sig = match module {
        "env" => match name {
            "proxy_log" => ("iii", "i"),
            "proxy_get_log_level" => ("i", "i"),
            "proxy_get_current_time_nanoseconds" => ("i", "i"),
            "proxy_set_tick_period_milliseconds" => ("i", "i"),
            "proxy_get_buffer_bytes" => ("iiiii", "i"),
            "proxy_get_buffer_status" => ("iii", "i"),
            "proxy_set_buffer_bytes" => ("iiiii", "i"),
            "proxy_get_header_map_pairs" => ("iii", "i"),
            "proxy_set_header_map_pairs" => ("iii", "i"),
            "proxy_get_header_map_size" => ("ii", "i"),
            "proxy_get_header_map_value" => ("iiiii", "i"),
            "proxy_remove_header_map_value" => ("iii", "i"),
            "proxy_replace_header_map_value" => ("iiiii", "i"),
            "proxy_add_header_map_value" => ("iiiii", "i"),
            "proxy_get_property" => ("iiii", "i"),
            "proxy_set_property" => ("iiii", "i"),
            "proxy_get_shared_data" => ("iiiii", "i"),
            "proxy_set_shared_data" => ("iiiii", "i"),
            "proxy_register_shared_queue" => ("iii", "i"),
            "proxy_resolve_shared_queue" => ("iiiii", "i"),
            "proxy_dequeue_shared_queue" => ("iii", "i"),
            "proxy_enqueue_shared_queue" => ("iii", "i"),
            "proxy_continue_stream" => ("i", "i"),
            "proxy_close_stream" => ("i", "i"),
            "proxy_continue_request" | "proxy_continue_response" => ("", "i"),
            "proxy_send_local_response" => ("iiiiiiii", "i"),
            "proxy_http_call" => ("iiiiiiiiii", "i"),
            "proxy_set_effective_context" => ("i", "i"),
            "proxy_done" => ("", "i"),
            "proxy_define_metric" => ("iiii", "i"),
            "proxy_increment_metric" => ("iI", "i"),
            "proxy_record_metric" => ("iI", "i"),
            "proxy_get_metric" => ("ii", "i"),
            "proxy_grpc_call" => ("iiiiiiiiiiii", "i"),
            "proxy_grpc_stream" => ("iiiiiiiii", "i"),
            "proxy_grpc_send" => ("iiii", "i"),
            "proxy_grpc_cancel" | "proxy_grpc_close" => ("i", "i"),
            "proxy_get_status" => ("iii", "i"),
            "proxy_call_foreign_function" => ("iiiiii", "i"),
            _ => return None,
        },
        "wasi_snapshot_preview1" => match name {
            "fd_write" | "fd_read" => ("iiii", "i"),
            "fd_close" => ("i", "i"),
            "fd_seek" => ("iIii", "i"),
            "fd_fdstat_get" | "fd_prestat_get" => ("ii", "i"),
            "fd_prestat_dir_name" => ("iii", "i"),
            "environ_get" | "environ_sizes_get" | "args_get" | "args_sizes_get" => ("ii", "i"),
            "clock_time_get" => ("iIi", "i"),
            "clock_res_get" => ("ii", "i"),
            "random_get" => ("ii", "i"),
            "proc_exit" => ("i", ""),
            "sched_yield" => ("", "i"),
            _ => return None,
        },
        _ => return None,
    };
    Some(sig)
}

// WASI errno values.
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const EIO: i32 = 29;

fn log_line(h: &Host, level: i32, msg: &[u8]) {
    core::log(&h.name, level, msg);
}

fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Binds every function of [`provides`] into `l`.
pub(crate) fn link(l: &mut Linker<Host>) -> wasmtime::Result<()> {
    let env = "env";
    l.func_wrap(
        env,
        "proxy_log",
        |mut c: C<'_>, level: i32, p: i32, n: i32| -> R {
            let Some(msg) = read(&mut c, p, n) else {
                return ok(Status::InvalidMemoryAccess);
            };
            log_line(c.data(), level, &msg);
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(env, "proxy_get_log_level", |mut c: C<'_>, out: i32| -> R {
        // Info: trace and debug lines are not asked for.
        if !write_u32(&mut c, out, 2) {
            return ok(Status::InvalidMemoryAccess);
        }
        ok(Status::Ok)
    })?;
    l.func_wrap(
        env,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, out: i32| -> R {
            if !write_u64(&mut c, out, realtime_ns()) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| -> R {
            c.data_mut().tick_ms = ms as u32;
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, t: i32, start: i32, max: i32, po: i32, so: i32| -> R {
            give_with(&mut c, po, so, |h, out| {
                let Some(b) = buffer(h, t) else {
                    return Status::BadArgument;
                };
                let start = (start as u32 as usize).min(b.len());
                let end = start.saturating_add(max as u32 as usize).min(b.len());
                if start == end && t != abi::buffer::PLUGIN_CONFIGURATION {
                    return Status::NotFound;
                }
                out.extend_from_slice(&b[start..end]);
                Status::Ok
            })
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_buffer_status",
        |mut c: C<'_>, t: i32, len_out: i32, flags_out: i32| -> R {
            let Some(len) = buffer(c.data(), t).map(<[u8]>::len) else {
                return ok(Status::BadArgument);
            };
            if !write_u32(&mut c, len_out, len as u32) || !write_u32(&mut c, flags_out, 0) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, t: i32, start: i32, size: i32, p: i32, n: i32| -> R {
            let Some(bytes) = read(&mut c, p, n) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let s = &mut c.data_mut().stream;
            let (b, changed) = match t {
                abi::buffer::REQUEST_BODY => (&mut s.request_body, &mut s.request_body_changed),
                abi::buffer::RESPONSE_BODY => (&mut s.response_body, &mut s.response_body_changed),
                _ => return ok(Status::BadArgument),
            };
            let start = (start as u32 as usize).min(b.len());
            let end = start.saturating_add(size as u32 as usize).min(b.len());
            b.splice(start..end, bytes);
            *changed = true;
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, t: i32, po: i32, so: i32| -> R {
            give_with(&mut c, po, so, |h, out| match map(h, t) {
                Some(m) => {
                    abi::serialize(m, out);
                    Status::Ok
                }
                None => Status::BadArgument,
            })
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, t: i32, p: i32, n: i32| -> R {
            let Some(bytes) = read(&mut c, p, n) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let Some(pairs) = abi::deserialize(&bytes) else {
                return ok(Status::ParseFailure);
            };
            match map_mut(c.data_mut(), t, None) {
                Some(m) => {
                    *m = pairs;
                    ok(Status::Ok)
                }
                None => ok(Status::BadArgument),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_header_map_size",
        |mut c: C<'_>, t: i32, out: i32| -> R {
            let Some(n) = map(c.data_mut(), t).map(|m| {
                let mut v = Vec::new();
                abi::serialize(m, &mut v);
                v.len()
            }) else {
                return ok(Status::BadArgument);
            };
            if !write_u32(&mut c, out, n as u32) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kn: i32, po: i32, so: i32| -> R {
            let Some(key) = read(&mut c, kp, kn) else {
                return ok(Status::InvalidMemoryAccess);
            };
            give_with(&mut c, po, so, |h, out| {
                let Some(m) = map(h, t) else {
                    return Status::BadArgument;
                };
                match m.iter().find(|(k, _)| lower_eq(k, &key)) {
                    Some((_, v)) => {
                        out.extend_from_slice(v);
                        Status::Ok
                    }
                    None => Status::NotFound,
                }
            })
        },
    )?;
    l.func_wrap(
        env,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kn: i32| -> R {
            let Some(key) = read(&mut c, kp, kn) else {
                return ok(Status::InvalidMemoryAccess);
            };
            match map_mut(c.data_mut(), t, Some(&key)) {
                Some(m) => {
                    m.retain(|(k, _)| !lower_eq(k, &key));
                    ok(Status::Ok)
                }
                None => ok(Status::BadArgument),
            }
        },
    )?;
    for (name, replace) in [
        ("proxy_replace_header_map_value", true),
        ("proxy_add_header_map_value", false),
    ] {
        l.func_wrap(
            env,
            name,
            move |mut c: C<'_>, t: i32, kp: i32, kn: i32, vp: i32, vn: i32| -> R {
                let (Some(key), Some(value)) = (read(&mut c, kp, kn), read(&mut c, vp, vn)) else {
                    return ok(Status::InvalidMemoryAccess);
                };
                let Some(m) = map_mut(c.data_mut(), t, Some(&key)) else {
                    return ok(Status::BadArgument);
                };
                if replace {
                    // The first line keeps its place and takes the value; the others go.
                    let mut seen = false;
                    m.retain_mut(|(k, v)| {
                        if !lower_eq(k, &key) {
                            return true;
                        }
                        if seen {
                            return false;
                        }
                        seen = true;
                        *v = value.clone();
                        true
                    });
                    if !seen {
                        m.push((key, value));
                    }
                } else {
                    m.push((key, value));
                }
                ok(Status::Ok)
            },
        )?;
    }
    l.func_wrap(
        env,
        "proxy_get_property",
        |mut c: C<'_>, kp: i32, kn: i32, po: i32, so: i32| -> R {
            let Some(path) = read(&mut c, kp, kn) else {
                return ok(Status::InvalidMemoryAccess);
            };
            give_with(&mut c, po, so, |h, out| property(h, &path, out))
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_property",
        |mut c: C<'_>, kp: i32, kn: i32, vp: i32, vn: i32| -> R {
            let (Some(path), Some(value)) = (read(&mut c, kp, kn), read(&mut c, vp, vn)) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let custom = &mut c.data_mut().stream.props.custom;
            match custom.iter_mut().find(|(k, _)| *k == path) {
                Some(e) => e.1 = value,
                None => custom.push((path, value)),
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kn: i32, po: i32, so: i32, cas_out: i32| -> R {
            let Some(key) = read(&mut c, kp, kn) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let found = c.data().core.data.borrow().get(&key).cloned();
            let Some((value, cas)) = found else {
                return ok(Status::NotFound);
            };
            let r = give(&mut c, &value, po, so)?;
            if r == Status::Ok as i32 && !write_u32(&mut c, cas_out, cas) {
                return ok(Status::InvalidMemoryAccess);
            }
            Ok(r)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kn: i32, vp: i32, vn: i32, cas: i32| -> R {
            let (Some(key), Some(value)) = (read(&mut c, kp, kn), read(&mut c, vp, vn)) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let core = c.data().core.clone();
            let mut data = core.data.borrow_mut();
            let cas = cas as u32;
            let len = data.len();
            let held = core.bytes.get();
            match data.get_mut(&key) {
                Some(e) => {
                    if cas != 0 && cas != e.1 {
                        return ok(Status::CasMismatch);
                    }
                    let after = held.saturating_sub(e.0.len()) + value.len();
                    if after > MAX_SHARED_BYTES {
                        return ok(Status::InternalFailure);
                    }
                    core.bytes.set(after);
                    e.0 = value;
                    e.1 = e.1.wrapping_add(1).max(1);
                }
                None => {
                    let after = held + key.len() + value.len();
                    if len >= MAX_SHARED_KEYS || after > MAX_SHARED_BYTES {
                        return ok(Status::InternalFailure);
                    }
                    core.bytes.set(after);
                    data.insert(key, (value, 1));
                }
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_register_shared_queue",
        |mut c: C<'_>, np: i32, nn: i32, out: i32| -> R {
            let Some(name) = read(&mut c, np, nn) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let owner = c.data().vm_id;
            let id = {
                let mut qs = c.data().core.queues.borrow_mut();
                match qs.iter().position(|q| q.name == name) {
                    Some(i) => {
                        qs[i].owner = owner;
                        i
                    }
                    None => {
                        qs.push(Queue {
                            name,
                            owner,
                            items: Default::default(),
                        });
                        qs.len() - 1
                    }
                }
            };
            if !write_u32(&mut c, out, id as u32) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, _vp: i32, _vn: i32, np: i32, nn: i32, out: i32| -> R {
            // One VM id per core: the vm id is not looked at.
            let Some(name) = read(&mut c, np, nn) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let id = c
                .data()
                .core
                .queues
                .borrow()
                .iter()
                .position(|q| q.name == name);
            let Some(id) = id else {
                return ok(Status::NotFound);
            };
            if !write_u32(&mut c, out, id as u32) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: i32, po: i32, so: i32| -> R {
            let item = {
                let core = c.data().core.clone();
                let mut qs = core.queues.borrow_mut();
                let item = match qs.get_mut(id as u32 as usize) {
                    Some(q) => q.items.pop_front(),
                    None => return ok(Status::NotFound),
                };
                if let Some(v) = &item {
                    core.bytes.set(core.bytes.get().saturating_sub(v.len()));
                }
                item
            };
            match item {
                Some(v) => give(&mut c, &v, po, so),
                None => ok(Status::Empty),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: i32, p: i32, n: i32| -> R {
            let Some(v) = read(&mut c, p, n) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let core = c.data().core.clone();
            let mut qs = core.queues.borrow_mut();
            let Some(q) = qs.get_mut(id as u32 as usize) else {
                return ok(Status::NotFound);
            };
            let after = core.bytes.get() + v.len();
            if q.items.len() >= MAX_QUEUE_ITEMS || after > MAX_SHARED_BYTES {
                return ok(Status::InternalFailure);
            }
            core.bytes.set(after);
            q.items.push_back(v);
            let mut ready = core.ready.borrow_mut();
            if !ready.contains(&(id as u32)) {
                ready.push(id as u32);
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(env, "proxy_continue_stream", |mut c: C<'_>, t: i32| -> R {
        match t {
            abi::stream::REQUEST | abi::stream::RESPONSE => {
                c.data_mut().stream.resumed = true;
                ok(Status::Ok)
            }
            _ => ok(Status::BadArgument),
        }
    })?;
    for name in ["proxy_continue_request", "proxy_continue_response"] {
        l.func_wrap(env, name, |mut c: C<'_>| -> R {
            c.data_mut().stream.resumed = true;
            ok(Status::Ok)
        })?;
    }
    l.func_wrap(env, "proxy_close_stream", |mut c: C<'_>, t: i32| -> R {
        match t {
            abi::stream::REQUEST | abi::stream::RESPONSE => {
                c.data_mut().stream.closed = true;
                ok(Status::Ok)
            }
            _ => ok(Status::BadArgument),
        }
    })?;
    l.func_wrap(
        env,
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: i32,
         dp: i32,
         dn: i32,
         bp: i32,
         bn: i32,
         hp: i32,
         hn: i32,
         _grpc: i32|
         -> R {
            let (Some(details), Some(body), Some(headers)) = (
                read(&mut c, dp, dn),
                read(&mut c, bp, bn),
                read(&mut c, hp, hn),
            ) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let Some(headers) = abi::deserialize(&headers) else {
                return ok(Status::ParseFailure);
            };
            if !(200..=599).contains(&status) {
                return ok(Status::BadArgument);
            }
            c.data_mut().stream.local = Some(LocalReply {
                status: status as u16,
                headers,
                body,
                details,
            });
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         un: i32,
         hp: i32,
         hn: i32,
         bp: i32,
         bn: i32,
         tp: i32,
         tn: i32,
         timeout: i32,
         token_out: i32|
         -> R {
            let (Some(upstream), Some(headers), Some(body), Some(trailers)) = (
                read(&mut c, up, un),
                read(&mut c, hp, hn),
                read(&mut c, bp, bn),
                read(&mut c, tp, tn),
            ) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let (Some(headers), Some(trailers)) =
                (abi::deserialize(&headers), abi::deserialize(&trailers))
            else {
                return ok(Status::ParseFailure);
            };
            let has = |n: &[u8]| headers.iter().any(|(k, _)| k == n);
            if !has(b":method") || !has(b":path") || !has(b":authority") {
                return ok(Status::BadArgument);
            }
            let Ok(upstream) = String::from_utf8(upstream) else {
                return ok(Status::BadArgument);
            };
            let h = c.data_mut();
            h.next_token = h.next_token.wrapping_add(1).max(1);
            let token = h.next_token;
            h.callouts.push(Callout {
                token,
                upstream,
                headers,
                body,
                trailers,
                timeout_ms: timeout as u32,
            });
            if !write_u32(&mut c, token_out, token) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_effective_context",
        |_c: C<'_>, _ctx: i32| -> R {
            // Each callback already runs with its context's data; callbacks of other contexts
            // (a callout answered for a stream) are dispatched with theirs by the VM.
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(env, "proxy_done", |_c: C<'_>| -> R {
        // Contexts are deleted right after proxy_on_done: nothing was deferred.
        ok(Status::Ok)
    })?;
    l.func_wrap(
        env,
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, np: i32, nn: i32, out: i32| -> R {
            let Some(name) = read(&mut c, np, nn) else {
                return ok(Status::InvalidMemoryAccess);
            };
            let kind = match kind {
                0 => MetricKind::Counter,
                1 => MetricKind::Gauge,
                2 => MetricKind::Histogram,
                _ => return ok(Status::BadArgument),
            };
            let Some((id, v)) = metrics::define(kind, &String::from_utf8_lossy(&name)) else {
                return ok(Status::BadArgument);
            };
            let h = c.data_mut();
            if !h.metrics.iter().any(|(i, _)| *i == id) {
                h.metrics.push((id, v));
            }
            if !write_u32(&mut c, out, id) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    fn metric(c: &C<'_>, id: i32) -> Option<Arc<AtomicI64>> {
        c.data()
            .metrics
            .iter()
            .find(|(i, _)| *i == id as u32)
            .map(|(_, v)| v.clone())
    }
    l.func_wrap(
        env,
        "proxy_increment_metric",
        |c: C<'_>, id: i32, by: i64| -> R {
            match metric(&c, id) {
                Some(v) => {
                    v.fetch_add(by, Ordering::Relaxed);
                    ok(Status::Ok)
                }
                None => ok(Status::NotFound),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_record_metric",
        |c: C<'_>, id: i32, value: i64| -> R {
            match metric(&c, id) {
                Some(v) => {
                    v.store(value, Ordering::Relaxed);
                    ok(Status::Ok)
                }
                None => ok(Status::NotFound),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, out: i32| -> R {
            let Some(v) = metric(&c, id) else {
                return ok(Status::NotFound);
            };
            if !write_u64(&mut c, out, v.load(Ordering::Relaxed) as u64) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        },
    )?;
    // bext has no gRPC upstreams: a gRPC call or stream fails at once, as Envoy's does for a
    // cluster it does not know; there is never a gRPC status to read.
    l.func_wrap(
        env,
        "proxy_grpc_call",
        |_c: C<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> R { ok(Status::InternalFailure) },
    )?;
    l.func_wrap(
        env,
        "proxy_grpc_stream",
        |_c: C<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> R {
            ok(Status::InternalFailure)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_grpc_send",
        |_c: C<'_>, _: i32, _: i32, _: i32, _: i32| -> R { ok(Status::NotFound) },
    )?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        l.func_wrap(env, name, |_c: C<'_>, _token: i32| -> R {
            ok(Status::NotFound)
        })?;
    }
    l.func_wrap(
        env,
        "proxy_get_status",
        |_c: C<'_>, _: i32, _: i32, _: i32| -> R { ok(Status::NotFound) },
    )?;
    // No foreign functions are defined: every name is unknown, as in a proxy without them.
    l.func_wrap(
        env,
        "proxy_call_foreign_function",
        |_c: C<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> R { ok(Status::NotFound) },
    )?;
    link_wasi(l)
}

fn link_wasi(l: &mut Linker<Host>) -> wasmtime::Result<()> {
    let w = "wasi_snapshot_preview1";
    l.func_wrap(
        w,
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, out: i32| -> R {
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let Some(list) = read(&mut c, iovs, n.saturating_mul(8)) else {
                return Ok(EFAULT);
            };
            let mut total = 0u32;
            for iov in list.chunks_exact(8) {
                let p = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let Some(bytes) = read(&mut c, p, len) else {
                    return Ok(EFAULT);
                };
                total = total.wrapping_add(bytes.len() as u32);
                let h = c.data_mut();
                h.out_line.extend_from_slice(&bytes);
                // Whole lines are logged at once (stdout as info, stderr as error).
                while let Some(nl) = h.out_line.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = h.out_line.drain(..=nl).collect();
                    log_line(h, if fd == 1 { 2 } else { 4 }, &line);
                }
                if h.out_line.len() > 4096 {
                    let line = std::mem::take(&mut h.out_line);
                    log_line(h, if fd == 1 { 2 } else { 4 }, &line);
                }
            }
            if !write_u32(&mut c, out, total) {
                return Ok(EFAULT);
            }
            Ok(ESUCCESS)
        },
    )?;
    l.func_wrap(
        w,
        "fd_read",
        |_c: C<'_>, _fd: i32, _iovs: i32, _n: i32, _out: i32| -> R {
            // No descriptor can be read: stdin is closed to plugins.
            Ok(EBADF)
        },
    )?;
    l.func_wrap(w, "fd_close", |_c: C<'_>, _fd: i32| -> R { Ok(EBADF) })?;
    l.func_wrap(
        w,
        "fd_seek",
        |_c: C<'_>, _fd: i32, _off: i64, _wh: i32, _out: i32| -> R { Ok(EBADF) },
    )?;
    l.func_wrap(w, "fd_fdstat_get", |mut c: C<'_>, fd: i32, out: i32| -> R {
        if !(0..=2).contains(&fd) {
            return Ok(EBADF);
        }
        // fdstat: filetype (character device = 2), flags, rights base and inheriting.
        let mut st = [0u8; 24];
        st[0] = 2;
        if fd > 0 {
            st[8] = 1 << 6; // fd_write
        }
        if !write_bytes(&mut c, out, &st) {
            return Ok(EFAULT);
        }
        Ok(ESUCCESS)
    })?;
    // No preopened directories: the plugin has no file system.
    l.func_wrap(w, "fd_prestat_get", |_c: C<'_>, _fd: i32, _out: i32| -> R {
        Ok(EBADF)
    })?;
    l.func_wrap(
        w,
        "fd_prestat_dir_name",
        |_c: C<'_>, _fd: i32, _p: i32, _n: i32| -> R { Ok(EBADF) },
    )?;
    // An empty environment and no arguments.
    for name in ["environ_sizes_get", "args_sizes_get"] {
        l.func_wrap(w, name, |mut c: C<'_>, count: i32, size: i32| -> R {
            if !write_u32(&mut c, count, 0) || !write_u32(&mut c, size, 0) {
                return Ok(EFAULT);
            }
            Ok(ESUCCESS)
        })?;
    }
    for name in ["environ_get", "args_get"] {
        l.func_wrap(w, name, |_c: C<'_>, _list: i32, _buf: i32| -> R {
            Ok(ESUCCESS)
        })?;
    }
    l.func_wrap(
        w,
        "clock_time_get",
        |mut c: C<'_>, id: i32, _prec: i64, out: i32| -> R {
            let ns = match id {
                0 => realtime_ns(),
                1..=3 => monotonic_ns(),
                _ => return Ok(EINVAL),
            };
            if !write_u64(&mut c, out, ns) {
                return Ok(EFAULT);
            }
            Ok(ESUCCESS)
        },
    )?;
    l.func_wrap(w, "clock_res_get", |mut c: C<'_>, id: i32, out: i32| -> R {
        if !(0..=3).contains(&id) {
            return Ok(EINVAL);
        }
        if !write_u64(&mut c, out, 1) {
            return Ok(EFAULT);
        }
        Ok(ESUCCESS)
    })?;
    l.func_wrap(w, "random_get", |mut c: C<'_>, p: i32, n: i32| -> R {
        use std::io::Read;
        // Checked before anything is allocated: `n` is the guest's to choose.
        let len = c.data().memory.map(|m| m.data_size(&c)).unwrap_or(0);
        if range(len, p, n).is_none() {
            return Ok(EFAULT);
        }
        let mut buf = vec![0u8; n as u32 as usize];
        let got = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
        if got.is_err() {
            return Ok(EIO);
        }
        if !write_bytes(&mut c, p, &buf) {
            return Ok(EFAULT);
        }
        Ok(ESUCCESS)
    })?;
    l.func_wrap(
        w,
        "proc_exit",
        |_c: C<'_>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::format_err!(
                "the plugin exited (proc_exit {code})"
            ))
        },
    )?;
    l.func_wrap(w, "sched_yield", |_c: C<'_>| -> R { Ok(ESUCCESS) })?;
    Ok(())
}
