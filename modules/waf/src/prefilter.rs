//! Required factors of a regex: a set of literals such that every match of the regex contains
//! at least one of them. The compiler puts them in the shared automaton; a regex runs on a
//! value only when the automaton saw one of its factors there, and most values show none.
//!
//! The analysis walks the regex's syntax tree. A node yields the finite set of strings it
//! matches exactly (when small) and a set of required factors; a concatenation multiplies the
//! exact sets of neighbouring nodes into longer literals, an alternation unites its branches'
//! factors, and a repetition of at least one keeps its operand's. Literals are lowercased:
//! the automaton matches ASCII case-insensitively, which can only add candidates.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Largest exact set carried through a concatenation.
const MAX_EXACT: usize = 64;
/// Largest factor set kept for one regex.
const MAX_FACTORS: usize = 2048;
/// Lowest [`quality`] worth a prefilter: a set of common single bytes would make most
/// values candidates.
const MIN_QUALITY: usize = 2;

#[derive(Default)]
struct Lits {
    /// Every string the node matches, when that set is finite and small.
    exact: Option<Vec<Vec<u8>>>,
    /// Literals one of which occurs in every match.
    factors: Option<Vec<Vec<u8>>>,
}

/// The required factors of `pattern` (already in the regex crate's syntax), or `None` when
/// the regex has no useful set (it then runs on every value).
pub(crate) fn factors(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .build()
        .parse(pattern)
        .ok()?;
    let set = best(analyse(&hir))?;
    (score(&set) >= MIN_QUALITY).then_some(set)
}

/// How selective a set is: its weakest literal's length plus one, where a single byte counts
/// 2 when it is rare in benign traffic (markup, quotes, shell and template punctuation,
/// control and non-ASCII bytes) and 1 otherwise; 0 for a set holding the empty string.
fn score(set: &[Vec<u8>]) -> usize {
    set.iter()
        .map(|lit| match lit.len() {
            0 => 0,
            1 if is_rare(lit[0]) => 2,
            1 => 1,
            n => n + 1,
        })
        .min()
        .unwrap_or(0)
}

fn is_rare(b: u8) -> bool {
    b"<>$`{}[]\\'\"!|^~".contains(&b) || !(0x20..0x7f).contains(&b)
}

/// The more selective of a node's exact set and its factors.
fn best(l: Lits) -> Option<Vec<Vec<u8>>> {
    match (l.exact, l.factors) {
        (Some(e), Some(f)) => Some(if score(&e) >= score(&f) { e } else { f }),
        (e, f) => e.or(f),
    }
    .filter(|s| !s.is_empty() && score(s) > 0)
}

fn dedup(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort_unstable();
    v.dedup();
    v
}

fn analyse(h: &Hir) -> Lits {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Lits {
            exact: Some(vec![Vec::new()]),
            factors: None,
        },
        HirKind::Literal(l) => Lits {
            exact: Some(vec![l.0.to_ascii_lowercase()]),
            factors: None,
        },
        HirKind::Class(c) => Lits {
            exact: class_bytes(c).map(|bytes| bytes.into_iter().map(|b| vec![b]).collect()),
            factors: None,
        },
        HirKind::Capture(c) => analyse(&c.sub),
        HirKind::Repetition(r) => {
            if r.min == 0 {
                return Lits::default();
            }
            let sub = analyse(&r.sub);
            let once = r.min == 1 && r.max == Some(1);
            // `x{3,}` holds `xxx`: the operand's exact set to the power of the minimum.
            let power = sub
                .exact
                .as_ref()
                .filter(|_| r.min > 1 && r.min <= 8)
                .and_then(|e| {
                    let mut acc: Vec<Vec<u8>> = vec![Vec::new()];
                    for _ in 0..r.min {
                        if acc.len() * e.len() > MAX_EXACT {
                            return None;
                        }
                        acc = acc
                            .iter()
                            .flat_map(|a| e.iter().map(move |b| [&a[..], &b[..]].concat()))
                            .collect();
                    }
                    Some(dedup(acc))
                });
            let exact = if once { sub.exact.clone() } else { None };
            let own = best(sub);
            let factors = match (power, own) {
                (Some(p), Some(o)) => Some(if score(&p) >= score(&o) { p } else { o }),
                (p, o) => p.or(o),
            };
            Lits { exact, factors }
        }
        HirKind::Concat(children) => concat(children),
        HirKind::Alternation(children) => {
            let subs: Vec<Lits> = children.iter().map(analyse).collect();
            let exact = subs
                .iter()
                .map(|s| s.exact.clone())
                .collect::<Option<Vec<_>>>()
                .map(|v| dedup(v.concat()))
                .filter(|v| v.len() <= MAX_EXACT);
            let factors = subs
                .into_iter()
                .map(best)
                .collect::<Option<Vec<_>>>()
                .map(|v| dedup(v.concat()))
                .filter(|v| v.len() <= MAX_FACTORS);
            Lits { exact, factors }
        }
    }
}

/// Runs of exact children multiply into literals; each run and each child's own factors are
/// candidates, and the most selective wins.
fn concat(children: &[Hir]) -> Lits {
    let mut candidates: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut run: Vec<Vec<u8>> = vec![Vec::new()];
    let mut all_exact = true;
    for child in children {
        let sub = analyse(child);
        match &sub.exact {
            Some(e) if run.len() * e.len() <= MAX_EXACT => {
                run = run
                    .iter()
                    .flat_map(|a| {
                        e.iter().map(move |b| {
                            let mut s = a.clone();
                            s.extend_from_slice(b);
                            s
                        })
                    })
                    .collect();
            }
            Some(e) => {
                all_exact = false;
                candidates.push(std::mem::replace(&mut run, e.clone()));
            }
            None => {
                all_exact = false;
                candidates.push(std::mem::replace(&mut run, vec![Vec::new()]));
            }
        }
        if let Some(f) = best(sub) {
            candidates.push(f);
        }
    }
    let run = dedup(run);
    let exact = all_exact.then(|| run.clone());
    candidates.push(run);
    let factors = candidates
        .into_iter()
        .filter(|c| score(c) > 0)
        .max_by_key(|c| (score(c), usize::MAX - c.len()));
    Lits { exact, factors }
}

/// The bytes of a small class, lowercased (`[Ss]` is one byte); `None` for a large one.
fn class_bytes(c: &Class) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match c {
        Class::Bytes(b) => {
            for r in b.ranges() {
                if (r.end() - r.start()) as usize >= 8 {
                    return None;
                }
                out.extend((r.start()..=r.end()).map(|b| b.to_ascii_lowercase()));
                if out.len() > 8 {
                    return None;
                }
            }
        }
        Class::Unicode(u) => {
            for r in u.ranges() {
                let (lo, hi) = (r.start() as u32, r.end() as u32);
                if hi > 0x7f || hi - lo >= 8 {
                    return None;
                }
                out.extend((lo..=hi).map(|b| (b as u8).to_ascii_lowercase()));
                if out.len() > 8 {
                    return None;
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    (out.len() <= 4).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::factors;

    fn f(p: &str) -> Option<Vec<String>> {
        factors(p).map(|v| {
            v.into_iter()
                .map(|s| String::from_utf8_lossy(&s).into_owned())
                .collect()
        })
    }

    #[test]
    fn literals_multiply_and_alternations_unite() {
        assert_eq!(f("(?i)union\\s+select"), Some(vec!["select".into()]));
        assert_eq!(
            f("(?:abc|xyz)[0-9]+"),
            Some(vec!["abc".into(), "xyz".into()])
        );
        assert_eq!(f("<scr[iI]pt"), Some(vec!["<script".into()]));
        assert_eq!(f("a(?:bc)?d"), None);
        assert_eq!(f("^[a-z]+$"), None);
        assert_eq!(f("x*"), None);
        assert_eq!(f("(?:ab|c)de"), Some(vec!["abde".into(), "cde".into()]));
        assert_eq!(f("(?:^|/)\\.{2,3}/"), Some(vec!["..".into()]));
        assert_eq!(f("[\\n\\r]"), Some(vec!["\n".into(), "\r".into()]));
        assert_eq!(f("\\.([^.]+)$"), None);
    }

    /// Every match of every pattern contains one of its factors, checked on matches the
    /// regexes find in a mixed haystack.
    #[test]
    fn factors_occur_in_every_match() {
        let hay = b"GET /a.php?id=1' UNION/**/SELECT pass FROM users-- <ScRiPt>alert(1)</script> ../../etc/passwd";
        for p in [
            "(?i)union[\\s/*]+select",
            "(?i)<script[^>]*>",
            "(?:\\.\\./)+etc/(?:passwd|shadow)",
            "(?i)from\\s+\\w+",
            "alert\\(\\d\\)",
        ] {
            let set = factors(p).unwrap_or_else(|| panic!("{p}: no factors"));
            let re = regex_automata::meta::Regex::new(p).expect("compiles");
            let mut found = 0;
            for m in re.find_iter(&hay[..]) {
                found += 1;
                let text = hay[m.range()].to_ascii_lowercase();
                assert!(
                    set.iter()
                        .any(|f| text.windows(f.len()).any(|w| w == &f[..])),
                    "{p}: match {:?} holds none of {set:?}",
                    String::from_utf8_lossy(&text)
                );
            }
            assert!(found > 0, "{p} matches the haystack");
        }
    }
}
