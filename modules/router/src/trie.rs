//! A byte trie over path prefixes, so that finding every key that begins a request path costs
//! one step per byte of the path, however many keys there are. The router keeps its prefix
//! routes in one (longest prefix first = deepest node first) and the literal prefixes of its
//! anchored regex routes in another (only regexes whose literal begins the path are run).

/// Index of a node; the root is 0.
pub(crate) type NodeId = u32;

const NONE: NodeId = NodeId::MAX;

#[derive(Debug)]
struct Node<T> {
    /// Children while building, sorted by byte; moved into the flat edge arrays by `finish`.
    children: Vec<(u8, NodeId)>,
    /// This node's edges in `edge_bytes`/`edge_nodes`, after `finish`.
    edges: (u32, u32),
    values: Vec<T>,
    /// The nearest strict ancestor that holds values, or `NONE`.
    up: NodeId,
}

impl<T> Node<T> {
    fn new() -> Node<T> {
        Node {
            children: Vec::new(),
            edges: (0, 0),
            values: Vec::new(),
            up: NONE,
        }
    }
}

/// Build with [`Trie::push`], then call [`Trie::finish`] once before any lookup.
#[derive(Debug)]
pub(crate) struct Trie<T> {
    nodes: Vec<Node<T>>,
    /// The edges of every node side by side, so a step down reads two small arrays instead of
    /// chasing a pointer per node: `edge_bytes[i]` leads to `edge_nodes[i]`.
    edge_bytes: Vec<u8>,
    edge_nodes: Vec<NodeId>,
    len: usize,
}

impl<T> Default for Trie<T> {
    fn default() -> Self {
        Trie {
            nodes: vec![Node::new()],
            edge_bytes: Vec::new(),
            edge_nodes: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Trie<T> {
    /// Appends `value` to the values of `key`.
    pub(crate) fn push(&mut self, key: &[u8], value: T) {
        let mut n = 0usize;
        for &b in key {
            let children = &self.nodes[n].children;
            n = match children.binary_search_by_key(&b, |&(c, _)| c) {
                Ok(i) => children[i].1 as usize,
                Err(i) => {
                    let id = self.nodes.len();
                    self.nodes[n].children.insert(i, (b, id as NodeId));
                    self.nodes.push(Node::new());
                    id
                }
            };
        }
        self.nodes[n].values.push(value);
        self.len += 1;
    }

    /// Lays the edges out flat and links every node to its nearest ancestor with values.
    pub(crate) fn finish(&mut self) {
        self.edge_bytes.clear();
        self.edge_nodes.clear();
        // Children always have larger ids than their parent, so one pass in id order sees a
        // parent's link before its children need it.
        for n in 0..self.nodes.len() {
            let inherited = if self.nodes[n].values.is_empty() {
                self.nodes[n].up
            } else {
                n as NodeId
            };
            let children = std::mem::take(&mut self.nodes[n].children);
            let start = self.edge_bytes.len() as u32;
            for &(b, c) in &children {
                self.nodes[c as usize].up = inherited;
                self.edge_bytes.push(b);
                self.edge_nodes.push(c);
            }
            self.nodes[n].edges = (start, start + children.len() as u32);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn child(&self, n: NodeId, b: u8) -> Option<NodeId> {
        let (start, end) = self.nodes[n as usize].edges;
        let (start, end) = (start as usize, end as usize);
        // Most nodes have one or a few edges: a scan of a few bytes beats a binary search.
        self.edge_bytes[start..end]
            .iter()
            .position(|&e| e == b)
            .map(|i| self.edge_nodes[start + i])
    }

    /// The node of the longest key that begins `path`, if any.
    pub(crate) fn deepest(&self, path: &[u8]) -> Option<NodeId> {
        let mut n = 0;
        let mut best = (!self.nodes[0].values.is_empty()).then_some(0);
        for &b in path {
            match self.child(n, b) {
                Some(c) => {
                    n = c;
                    if !self.nodes[c as usize].values.is_empty() {
                        best = Some(c);
                    }
                }
                None => break,
            }
        }
        best
    }

    /// The node of the next shorter key that begins the same paths as `n`'s key.
    pub(crate) fn shorter(&self, n: NodeId) -> Option<NodeId> {
        let up = self.nodes[n as usize].up;
        (up != NONE).then_some(up)
    }

    /// The values stored under the key of node `n`, in insertion order.
    pub(crate) fn values(&self, n: NodeId) -> &[T] {
        &self.nodes[n as usize].values
    }

    /// The values of `key` exactly.
    pub(crate) fn get(&self, key: &[u8]) -> &[T] {
        let mut n = 0;
        for &b in key {
            match self.child(n, b) {
                Some(c) => n = c,
                None => return &[],
            }
        }
        self.values(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_begin_a_path_come_longest_first() {
        let mut t = Trie::default();
        for (k, v) in [
            ("/", 1),
            ("/api/", 2),
            ("/api", 3),
            ("/api/v1/", 4),
            ("/b", 5),
        ] {
            t.push(k.as_bytes(), v);
        }
        t.push(b"/api/", 6);
        t.finish();
        let table: &[(&str, &[i32])] = &[
            ("/api/v1/x", &[4, 2, 6, 3, 1]),
            ("/api/v2", &[2, 6, 3, 1]),
            ("/apis", &[3, 1]),
            ("/", &[1]),
            ("/c", &[1]),
            ("x", &[]),
            ("", &[]),
        ];
        for (path, want) in table {
            let mut got = vec![];
            let mut n = t.deepest(path.as_bytes());
            while let Some(id) = n {
                got.extend_from_slice(t.values(id));
                n = t.shorter(id);
            }
            assert_eq!(got, *want, "{path}");
        }
        assert_eq!(t.get(b"/api/"), &[2, 6]);
        assert_eq!(t.get(b"/ap"), &[] as &[i32]);
        assert!(!t.is_empty());
    }
}
