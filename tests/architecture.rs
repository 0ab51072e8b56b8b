//! The floors of `src/` (docs/ARCHITECTURE.md, "Floors"): no file imports, directly or through
//! other files, a file that imports it. Each file is one node; an edge is a path in it (`use`, or
//! a path in code: `crate::…`, `super::…`, `self::…`, a child module's name) that names an item
//! defined in another file. `mod` declarations and `pub use` re-exports are not edges — a module
//! that lists its children or re-exports their items is their front door, not a user of them — so
//! a path through a re-export is followed to the file that defines the item.
//!
//! Paths inside macro invocations (`format!(…)`, `vec![…]`) are token streams and not seen; a
//! `pub use` whose item the module also uses itself is counted as a re-export only. Both make the
//! check miss an edge, never invent one.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module's path from its crate's root: `["medfocus", "dataset", "npz"]`; the binary's root is
/// `main`.
type ModulePath = Vec<String>;

const LIBRARY: &str = "medfocus";
const BINARY: &str = "main";

/// What one module (a file, or an inline `mod x { … }` inside one) holds.
#[derive(Default)]
struct Module {
    /// The file it lives in, relative to the tree's root (`dataset/npz.rs`).
    file: String,
    /// Child modules (file or inline) by name.
    children: BTreeSet<String>,
    /// Items defined here (types, functions, constants, traits, macros).
    defined: BTreeSet<String>,
    /// `pub use` re-exports: the name seen here → the absolute path it stands for.
    reexports: BTreeMap<String, ModulePath>,
    /// `pub use path::*`: absolute module paths whose items are re-exported here.
    glob_reexports: Vec<ModulePath>,
    /// Every other path this module names: as written, with the module it was written in.
    uses: Vec<Vec<String>>,
}

struct Tree {
    modules: HashMap<ModulePath, Module>,
}

/// One `use` leaf: the path as written, the name it binds (`None` for a glob), whether it is
/// public (a re-export).
struct UseLeaf {
    path: Vec<String>,
    name: Option<String>,
    public: bool,
}

fn use_leaves(tree: &syn::UseTree, prefix: &mut Vec<String>, public: bool, out: &mut Vec<UseLeaf>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, public, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            // `use a::b::{self}` binds `b`.
            let bound = if name == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                path.push(name.clone());
                name
            };
            out.push(UseLeaf {
                path,
                name: Some(bound),
                public,
            });
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push(UseLeaf {
                path,
                name: Some(r.rename.to_string()),
                public,
            });
        }
        syn::UseTree::Glob(_) => out.push(UseLeaf {
            path: prefix.clone(),
            name: None,
            public,
        }),
        syn::UseTree::Group(g) => {
            for item in &g.items {
                use_leaves(item, prefix, public, out);
            }
        }
    }
}

/// Paths in code (not in `use` items, not in nested modules, which are walked on their own).
#[derive(Default)]
struct CodePaths(Vec<Vec<String>>);

impl<'ast> Visit<'ast> for CodePaths {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            self.0
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}
    /// A `use` inside a function body: its paths are the function's.
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut leaves = Vec::new();
        use_leaves(&item.tree, &mut Vec::new(), false, &mut leaves);
        self.0.extend(leaves.into_iter().map(|leaf| leaf.path));
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

impl Tree {
    /// Reads the crate rooted at `root/lib.rs` and, when present, the binary at `root/main.rs`.
    fn read(root: &Path) -> Result<Tree, String> {
        let mut tree = Tree {
            modules: HashMap::new(),
        };
        tree.read_file(root, Path::new("lib.rs"), vec![LIBRARY.to_string()])?;
        if root.join("main.rs").exists() {
            tree.read_file(root, Path::new("main.rs"), vec![BINARY.to_string()])?;
        }
        Ok(tree)
    }

    fn read_file(&mut self, root: &Path, file: &Path, module: ModulePath) -> Result<(), String> {
        let text = std::fs::read_to_string(root.join(file))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed = syn::parse_file(&text)
            .map_err(|e| format!("{}: does not parse: {e}", file.display()))?;
        // Where this file's `mod x;` children live: beside it for `lib.rs`, `main.rs`, `mod.rs`,
        // in a folder of its own name otherwise.
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let folder = match stem {
            "lib" | "main" | "mod" => file.parent().map(Path::to_path_buf).unwrap_or_default(),
            _ => file.with_extension(""),
        };
        self.read_items(root, file, &folder, module, &parsed.items)
    }

    fn read_items(
        &mut self,
        root: &Path,
        file: &Path,
        folder: &Path,
        module: ModulePath,
        items: &[syn::Item],
    ) -> Result<(), String> {
        let file_name = file.to_string_lossy().replace('\\', "/");
        self.modules.entry(module.clone()).or_default().file = file_name;
        let mut code = CodePaths::default();
        for item in items {
            match item {
                syn::Item::Mod(m) => {
                    let name = m.ident.to_string();
                    self.modules
                        .get_mut(&module)
                        .expect("inserted above")
                        .children
                        .insert(name.clone());
                    let mut child = module.clone();
                    child.push(name.clone());
                    match &m.content {
                        Some((_, inner)) => {
                            self.read_items(root, file, &folder.join(&name), child, inner)?
                        }
                        None => {
                            let flat = folder.join(format!("{name}.rs"));
                            let nested = folder.join(&name).join("mod.rs");
                            let child_file = if root.join(&flat).exists() {
                                flat
                            } else if root.join(&nested).exists() {
                                nested
                            } else {
                                return Err(format!(
                                    "{}: `mod {name};` has neither {} nor {}",
                                    file.display(),
                                    flat.display(),
                                    nested.display()
                                ));
                            };
                            self.read_file(root, &child_file, child)?;
                        }
                    }
                }
                syn::Item::Use(u) => {
                    let public = !matches!(u.vis, syn::Visibility::Inherited);
                    let mut leaves = Vec::new();
                    use_leaves(&u.tree, &mut Vec::new(), public, &mut leaves);
                    for leaf in leaves {
                        let Some(absolute) = self.absolute(&module, &leaf.path) else {
                            continue; // another crate
                        };
                        let here = self.modules.get_mut(&module).expect("inserted above");
                        match (leaf.public, leaf.name) {
                            (true, Some(name)) => {
                                here.reexports.insert(name, absolute);
                            }
                            (true, None) => here.glob_reexports.push(absolute),
                            (false, _) => here.uses.push(absolute),
                        }
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        self.modules
                            .get_mut(&module)
                            .expect("inserted above")
                            .defined
                            .insert(name);
                    }
                    code.visit_item(other);
                }
            }
        }
        for path in code.0 {
            if let Some(absolute) = self.absolute(&module, &path) {
                self.modules
                    .get_mut(&module)
                    .expect("inserted above")
                    .uses
                    .push(absolute);
            }
        }
        Ok(())
    }

    /// A path as written in `module`, made absolute; `None` when it names another crate (or a
    /// name this check does not follow: a local, a type's associated item, an import's alias).
    /// Children declared after the use are not yet known here, so relative paths are kept with a
    /// marker and resolved in [`Tree::resolve`].
    fn absolute(&self, module: &ModulePath, path: &[String]) -> Option<ModulePath> {
        let (first, rest) = path.split_first()?;
        let mut base = match first.as_str() {
            "crate" => vec![module[0].clone()],
            LIBRARY => vec![LIBRARY.to_string()],
            "self" => module.clone(),
            "super" => {
                let mut base = module.clone();
                base.pop();
                let mut rest = rest;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                return (!base.is_empty()).then_some(base);
            }
            _ => {
                // A child module's name (uniform paths): marked relative, resolved later.
                let mut relative = vec![format!("./{}", module.join("::"))];
                relative.extend(path.iter().cloned());
                return Some(relative);
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module that defines what `path` names (following re-exports), or `None`.
    fn resolve(&self, path: &[String], depth: usize) -> Option<ModulePath> {
        if depth > 16 {
            return None; // a re-export cycle; rustc would have refused it
        }
        let (mut at, segments): (ModulePath, &[String]) = match path.first() {
            Some(first) if first.starts_with("./") => {
                let module: ModulePath = first[2..].split("::").map(String::from).collect();
                let child = path.get(1)?;
                // Not a child: a local name, an import, or another crate.
                if !self.modules.get(&module)?.children.contains(child) {
                    return None;
                }
                (module, &path[1..])
            }
            Some(root) => (vec![root.clone()], &path[1..]),
            None => return None,
        };
        self.modules.get(&at)?;
        for segment in segments {
            let module = self.modules.get(&at)?;
            if module.children.contains(segment) {
                at.push(segment.clone());
                continue;
            }
            if module.defined.contains(segment) {
                return Some(at);
            }
            if let Some(target) = module.reexports.get(segment) {
                return self.resolve(target, depth + 1).or(Some(at));
            }
            for glob in &module.glob_reexports {
                let mut candidate = glob.clone();
                candidate.push(segment.clone());
                if let Some(found) = self.resolve(&candidate, depth + 1) {
                    if &found != glob || self.modules.get(glob)?.defined.contains(segment) {
                        return Some(found);
                    }
                }
            }
            // An associated item, an enum variant, a macro-made name: the module holds it.
            return Some(at);
        }
        Some(at)
    }

    /// File → (file it uses → the paths that make the edge).
    fn edges(&self) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
        let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for module in self.modules.values() {
            let from = &module.file;
            edges.entry(from.clone()).or_default();
            for path in &module.uses {
                let Some(target) = self.resolve(path, 0) else {
                    continue;
                };
                let Some(to) = self.modules.get(&target).map(|m| &m.file) else {
                    continue;
                };
                if to != from {
                    let shown = path
                        .iter()
                        .filter(|s| !s.starts_with("./"))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("::");
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to.clone())
                        .or_default()
                        .insert(shown);
                }
            }
        }
        edges
    }

    /// The same graph between floors: the library's top-level modules (`clip`, `heads`, …; the
    /// files directly in `src/` are floors of their own), and the binary (`main.rs`, `cli/`) as
    /// one floor above them all.
    fn floor_edges(&self) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
        let floor_of = |file: &str| -> String {
            if self.is_binary(file) {
                return BINARY.to_string();
            }
            let top = file.split('/').next().unwrap_or(file);
            top.strip_suffix(".rs").unwrap_or(top).to_string()
        };
        let mut floors: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (from, targets) in self.edges() {
            let from_floor = floor_of(&from);
            floors.entry(from_floor.clone()).or_default();
            for (to, paths) in targets {
                let to_floor = floor_of(&to);
                if to_floor != from_floor {
                    let why = floors
                        .entry(from_floor.clone())
                        .or_default()
                        .entry(to_floor)
                        .or_default();
                    why.extend(paths.into_iter().map(|path| format!("{from}: {path}")));
                }
            }
        }
        floors
    }

    fn is_binary(&self, file: &str) -> bool {
        self.modules
            .iter()
            .any(|(path, module)| path[0] == BINARY && module.file == file)
    }

    /// Every import loop between files.
    fn loops(&self) -> Vec<String> {
        cycles(&self.edges())
    }

    /// Every import loop between floors.
    fn floor_loops(&self) -> Vec<String> {
        cycles(&self.floor_edges())
    }
}

/// The strongly connected components of more than one node, each with the edges among its members.
fn cycles(edges: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Vec<String> {
    let files: Vec<&String> = edges.keys().collect();
    let index: HashMap<&String, usize> = files.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let successors: Vec<Vec<usize>> = files
        .iter()
        .map(|f| {
            edges[*f]
                .keys()
                .filter_map(|t| index.get(t).copied())
                .collect()
        })
        .collect();
    let components = strongly_connected(&successors);
    let mut loops = Vec::new();
    for component in components.into_iter().filter(|c| c.len() > 1) {
        let members: BTreeSet<&String> = component.iter().map(|&i| files[i]).collect();
        let mut lines = Vec::new();
        for from in &members {
            for (to, paths) in &edges[*from] {
                if members.contains(to) {
                    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                    lines.push(format!("  {from} → {to}: {}", paths.join(", ")));
                }
            }
        }
        loops.push(format!(
            "{}\n{}",
            members.into_iter().cloned().collect::<Vec<_>>().join(" ⇄ "),
            lines.join("\n")
        ));
    }
    loops
}

/// Tarjan's algorithm, iterative (no recursion limit on deep graphs).
fn strongly_connected(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = successors.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut next, mut stack, mut components) = (0, Vec::new(), Vec::new());
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some(&mut (node, ref mut child)) = work.last_mut() {
            if *child == 0 {
                index[node] = next;
                low[node] = next;
                next += 1;
                stack.push(node);
                on_stack[node] = true;
            }
            if let Some(&successor) = successors[node].get(*child) {
                *child += 1;
                if index[successor] == usize::MAX {
                    work.push((successor, 0));
                } else if on_stack[successor] {
                    low[node] = low[node].min(index[successor]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

#[test]
fn src_has_no_import_loops() {
    let tree = read_src();
    let loops = tree.loops();
    assert!(
        loops.is_empty(),
        "import loops in src/ (docs/ARCHITECTURE.md, \"Floors\": move what both sides share below both):\n{}",
        loops.join("\n")
    );
}

fn read_src() -> Tree {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let tree = Tree::read(&src).unwrap_or_else(|e| panic!("reading src/: {e}"));
    assert!(
        tree.modules.len() > 50,
        "read only {} modules from src/",
        tree.modules.len()
    );
    tree
}

#[test]
fn floors_import_only_floors_below() {
    let loops = read_src().floor_loops();
    assert!(
        loops.is_empty(),
        "import loops between the top-level modules of src/ (docs/ARCHITECTURE.md, \"Floors\"):\n{}",
        loops.join("\n")
    );
}

/// A throwaway crate under the target's temporary folder.
fn write_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!(
        "medfocus-architecture-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    root
}

#[test]
fn the_check_finds_a_loop_through_a_reexport_and_code_paths() {
    let root = write_crate(
        "loop",
        &[
            ("lib.rs", "pub mod data;\npub mod report;\n"),
            (
                "data/mod.rs",
                "mod layout;\nmod npz;\npub use layout::{Dataset, Split};\n",
            ),
            (
                "data/layout.rs",
                "pub struct Dataset;\npub enum Split { Train }\npub fn open() { super::npz::read(); }\n",
            ),
            // Through the re-export in data/mod.rs to layout.rs: the loop the issue named.
            ("data/npz.rs", "use super::Split;\npub fn read() {}\n"),
            (
                "report.rs",
                "pub fn f() -> crate::data::Dataset { todo!() }\n",
            ),
        ],
    );
    let loops = Tree::read(&root).expect("reads").loops();
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(loops.len(), 1, "{loops:#?}");
    assert!(
        loops[0].starts_with("data/layout.rs ⇄ data/npz.rs"),
        "{}",
        loops[0]
    );
    assert!(
        loops[0].contains("data/layout.rs → data/npz.rs: medfocus::data::npz::read"),
        "{}",
        loops[0]
    );
    assert!(
        loops[0].contains("data/npz.rs → data/layout.rs: medfocus::data::Split"),
        "{}",
        loops[0]
    );
}

#[test]
fn the_check_passes_layers_and_a_parent_used_by_its_children() {
    let root = write_crate(
        "floors",
        &[
            ("lib.rs", "pub mod focus;\npub mod pipeline;\n"),
            // The shared type lives below both: the children use the parent, not each other.
            (
                "focus/mod.rs",
                "pub mod mask;\npub mod prompt;\npub struct Mode;\npub use mask::Mask;\n",
            ),
            ("focus/mask.rs", "pub struct Mask(pub super::Mode);\n"),
            (
                "focus/prompt.rs",
                "use super::{Mask, Mode};\npub fn draw(_: Mask, _: Mode) {}\n",
            ),
            (
                "pipeline.rs",
                "use crate::focus::{self, prompt};\npub fn run() { prompt::draw(focus::Mask(focus::Mode), focus::Mode); }\n#[cfg(test)]\nmod tests { use super::*; }\n",
            ),
            ("main.rs", "mod cli;\nfn main() { cli::run() }\n"),
            ("cli.rs", "pub fn run() { medfocus::pipeline::run() }\n"),
        ],
    );
    let tree = Tree::read(&root).expect("reads");
    let edges = tree.edges();
    let loops = tree.loops();
    let _ = std::fs::remove_dir_all(&root);
    assert!(loops.is_empty(), "{loops:#?}");
    assert!(
        edges["focus/prompt.rs"].contains_key("focus/mask.rs"),
        "{edges:#?}"
    );
    assert!(
        edges["focus/prompt.rs"].contains_key("focus/mod.rs"),
        "{edges:#?}"
    );
    assert!(
        edges["pipeline.rs"].contains_key("focus/prompt.rs"),
        "{edges:#?}"
    );
    assert!(edges["cli.rs"].contains_key("pipeline.rs"), "{edges:#?}");
    assert!(
        !edges["focus/mod.rs"].contains_key("focus/mask.rs"),
        "{edges:#?}"
    );
}

/// Prints which floor uses which (`cargo test --test architecture -- --ignored --nocapture`), for
/// redrawing docs/ARCHITECTURE.md's floors.
#[test]
#[ignore = "prints the floor map; asserts nothing"]
fn print_floor_map() {
    for (floor, below) in read_src().floor_edges() {
        let below: Vec<&str> = below.keys().map(String::as_str).collect();
        println!("{floor} → {}", below.join(", "));
    }
}

/// A library function longer than this says, in its doc comment, why it is not split.
const LONG_FUNCTION_LINES: usize = 80;
/// How the doc comment of a long function starts its reason.
const WHY_NOT_SPLIT: &str = "Not split:";

/// Functions (free, in impls and traits, in nested modules) of `source` longer than
/// [`LONG_FUNCTION_LINES`] whose doc comment lacks [`WHY_NOT_SPLIT`]: `(name, first line, lines)`.
/// Tests and `#[cfg(test)]` modules do not count.
fn unexplained_long_functions(source: &str) -> Result<Vec<(String, usize, usize)>, String> {
    #[derive(Default)]
    struct Long(Vec<(String, usize, usize)>);
    fn is_test(attrs: &[syn::Attribute]) -> bool {
        attrs.iter().any(|attr| {
            attr.path().is_ident("test")
                || (attr.path().is_ident("cfg")
                    && attr
                        .parse_args::<syn::Ident>()
                        .is_ok_and(|ident| ident == "test"))
        })
    }
    fn explained(attrs: &[syn::Attribute]) -> bool {
        attrs.iter().any(|attr| match &attr.meta {
            syn::Meta::NameValue(doc) if doc.path.is_ident("doc") => matches!(
                &doc.value,
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), .. })
                    if text.value().trim_start().starts_with(WHY_NOT_SPLIT)
            ),
            _ => false,
        })
    }
    impl Long {
        fn check(&mut self, attrs: &[syn::Attribute], sig: &syn::Signature, block: &syn::Block) {
            let first = sig.fn_token.span.start().line;
            let lines = block.brace_token.span.close().end().line + 1 - first;
            if lines > LONG_FUNCTION_LINES && !is_test(attrs) && !explained(attrs) {
                self.0.push((sig.ident.to_string(), first, lines));
            }
        }
    }
    impl<'ast> Visit<'ast> for Long {
        fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
            if !is_test(&item.attrs) {
                syn::visit::visit_item_mod(self, item);
            }
        }
        fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
            self.check(&item.attrs, &item.sig, &item.block);
            syn::visit::visit_item_fn(self, item);
        }
        fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
            self.check(&item.attrs, &item.sig, &item.block);
            syn::visit::visit_impl_item_fn(self, item);
        }
        fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
            if let Some(block) = &item.default {
                self.check(&item.attrs, &item.sig, block);
            }
            syn::visit::visit_trait_item_fn(self, item);
        }
    }
    let file = syn::parse_file(source).map_err(|error| error.to_string())?;
    let mut long = Long::default();
    long.visit_file(&file);
    Ok(long.0)
}

/// Every `.rs` file under `dir`, relative to it.
fn rust_files(dir: &Path, relative: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join(relative))
        .unwrap_or_else(|error| panic!("{}: {error}", dir.join(relative).display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = relative.join(path.file_name().expect("a name"));
        if path.is_dir() {
            rust_files(dir, &name, out);
        } else if name.extension().is_some_and(|ext| ext == "rs") {
            out.push(name);
        }
    }
}

#[test]
fn long_library_functions_say_why_they_are_not_split() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, Path::new(""), &mut files);
    // The library: not the binary's `main.rs` and `cli/` (a subcommand's `run` reads top to bottom).
    files.retain(|file| file != Path::new("main.rs") && !file.starts_with("cli"));
    assert!(files.len() > 50, "read only {} files", files.len());
    let mut unexplained = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(src.join(file)).expect("readable");
        for (name, line, lines) in unexplained_long_functions(&text).expect("parses") {
            unexplained.push(format!(
                "  src/{}:{line} `{name}`: {lines} lines",
                file.display()
            ));
        }
    }
    assert!(
        unexplained.is_empty(),
        "library functions over {LONG_FUNCTION_LINES} lines: split them, or say why not in a doc line starting `{WHY_NOT_SPLIT}`:\n{}",
        unexplained.join("\n")
    );
}

#[test]
fn the_long_function_check_counts_lines_and_reads_the_reason() {
    let body = |lines: usize| "    let _ = 1;\n".repeat(lines);
    let source = format!(
        "fn short() {{\n{}}}\n\nfn long() {{\n{}}}\n\n/// Does a lot.\n///\n/// Not split: one table, row by row.\nfn explained() {{\n{}}}\n\nstruct S;\nimpl S {{\n    fn long_method(&self) {{\n{}    }}\n}}\n\n#[test]\nfn long_test() {{\n{}}}\n\n#[cfg(test)]\nmod tests {{\n    fn helper() {{\n{}    }}\n}}\n",
        body(78),
        body(79),
        body(200),
        body(100),
        body(100),
        body(100),
    );
    let found = unexplained_long_functions(&source).expect("parses");
    let names: Vec<&str> = found.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(names, ["long", "long_method"], "{found:?}");
    // `short` is 80 lines with its braces, `long` 81.
    assert_eq!((found[0].1, found[0].2), (82, 81));
}
