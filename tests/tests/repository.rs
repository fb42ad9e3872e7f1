//! The repository as its users receive it: the LICENSE file is the license every crate declares.

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
