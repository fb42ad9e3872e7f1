//! The repository as its users receive it: the LICENSE file is the license every crate
//! declares, and the crate graph `docs/architecture.md` draws is the one cargo builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use edgescore_tests::repo_root;

/// Every `Cargo.toml` in the repository, outside `target/`.
fn manifests(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                manifests(&path, found);
            }
        } else if name == "Cargo.toml" {
            found.push(path);
        }
    }
}

#[test]
fn the_license_file_is_the_license_every_crate_declares() {
    let root = repo_root();
    let license = std::fs::read_to_string(root.join("LICENSE")).expect("a LICENSE file");
    assert!(
        license.contains("Apache License") && license.contains("Version 2.0, January 2004"),
        "LICENSE is not the Apache License 2.0"
    );
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "LICENSE is cut short"
    );

    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        workspace["workspace"]["package"]["license"].as_str(),
        Some("Apache-2.0")
    );

    let mut found = Vec::new();
    manifests(&root, &mut found);
    let packages: Vec<_> = found
        .iter()
        .filter_map(|path| {
            let manifest: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
            let package = manifest.get("package")?.as_table()?.clone();
            Some((path, package))
        })
        .collect();
    assert!(packages.len() >= 10, "{found:?}");
    for (path, package) in packages {
        let declared = match package.get("license") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(toml::Value::Table(t)) if t.get("workspace") == Some(&true.into()) => {
                "Apache-2.0".to_string()
            }
            other => panic!("{}: license {other:?}", path.display()),
        };
        assert_eq!(declared, "Apache-2.0", "{}", path.display());
    }
}

/// One crate as a source gives it: its folder and the workspace crates it depends on.
#[derive(Debug, PartialEq)]
struct Crate {
    folder: String,
    depends_on: BTreeSet<String>,
}

/// The crate table of `docs/architecture.md`: rows of
/// `| `crate` | `folder` | `dependency`, ... or — | what it is |`.
fn crates_in_architecture_doc(doc: &str) -> BTreeMap<String, Crate> {
    let table = doc
        .split("## The crates")
        .nth(1)
        .expect("docs/architecture.md has a section \"The crates\"");
    let mut crates = BTreeMap::new();
    for row in table.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(cells.len() >= 4, "a row without four cells: {row}");
        let ticked = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let name = ticked(cells[0]).remove(0);
        let folder = ticked(cells[1]).remove(0);
        let depends_on = ticked(cells[2])
            .into_iter()
            .filter(|dep| !dep.starts_with("spin-app") && !dep.starts_with("native-tract"))
            .collect();
        let previous = crates.insert(name.clone(), Crate { folder, depends_on });
        assert!(previous.is_none(), "{name} has two rows");
    }
    crates
}

/// The workspace as `cargo metadata` gives it: every package, its folder and its normal
/// (optional included) dependencies on other packages of the workspace.
fn crates_in_workspace(root: &Path) -> BTreeMap<String, Crate> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let workspace = Path::new(metadata["workspace_root"].as_str().unwrap());
    let packages = metadata["packages"].as_array().unwrap();
    let names: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    packages
        .iter()
        .map(|package| {
            let manifest = Path::new(package["manifest_path"].as_str().unwrap());
            let folder = manifest
                .parent()
                .unwrap()
                .strip_prefix(workspace)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let depends_on = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| {
                    dep["kind"].is_null() && names.contains(dep["name"].as_str().unwrap())
                })
                .map(|dep| dep["name"].as_str().unwrap().to_string())
                .collect();
            let name = package["name"].as_str().unwrap().to_string();
            (name, Crate { folder, depends_on })
        })
        .collect()
}

#[test]
fn the_architecture_doc_names_every_crate_with_its_folder_and_dependencies() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let documented = crates_in_architecture_doc(&doc);
    let built = crates_in_workspace(&root);
    let names = |crates: &BTreeMap<String, Crate>| crates.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&documented),
        names(&built),
        "docs/architecture.md's crate table against the workspace's packages"
    );
    for (name, crate_built) in &built {
        assert_eq!(
            &documented[name], crate_built,
            "docs/architecture.md's row of {name} against cargo metadata"
        );
    }
}

#[test]
fn the_architecture_doc_parser_sees_a_drifted_row() {
    let doc = "## The crates\n\n| crate | folder | depends on | what |\n| --- | --- | --- | --- |\n\
               | `a` | `core/a` | — | first |\n\
               | `b` | `core/b` | `a`, `c` (feature `spin-app`) | second |\n";
    let crates = crates_in_architecture_doc(doc);
    assert_eq!(crates["a"].depends_on, BTreeSet::new());
    assert_eq!(crates["b"].folder, "core/b");
    assert_eq!(
        crates["b"].depends_on,
        BTreeSet::from(["a".to_string(), "c".to_string()])
    );
}
