//! `edgescore inspect`: what the component exports and which models the registry serves.

use anyhow::{Context, Result};
use clap::Args;
use edgescore_runtime::{ComponentSource, Scorer};

use crate::args::{ModelArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let runtime = args.runtime.runtime()?;
    let bytes = runtime.component_bytes();
    let sha = runtime.component_sha256();
    match args.runtime.source() {
        ComponentSource::Embedded { .. } => println!("component: embedded in this binary"),
        ComponentSource::Path(path) => println!("component: {}", path.display()),
    }
    println!(
        "size: {} bytes ({:.1} MiB), sha256 {sha}",
        bytes.len(),
        bytes.len() as f64 / (1 << 20) as f64
    );
    println!();
    println!("{}", edgescore_runtime::wit::exported_wit(bytes)?);

    if args.model.model.is_none() {
        let registry = args.model.registry()?;
        println!("registry:");
        let active = registry
            .select(args.model.model_name.as_deref(), args.model.model_version)
            .ok();
        for v in &registry.versions {
            let m = &v.manifest;
            let mark = if active.is_some_and(|a| std::ptr::eq(a, v)) {
                "*"
            } else {
                " "
            };
            println!(
                "{mark} {} v{}  width {}  features {:?}  sha256 {}",
                m.name, m.version, m.input_width, m.feature_names, m.sha256
            );
        }
        for problem in &registry.problems {
            println!("  skipped {problem}");
        }
        println!();
    }
    let model = args.model.choose()?;
    let scorer = Scorer::new(&runtime, &model.onnx).context(model.label.clone())?;
    let info = scorer.info();
    println!("model {} as the component loaded it:", model.label);
    println!(
        "  input  {:?} [N, {}] f32",
        info.input_name, info.input_width
    );
    println!("  output {:?} [N] f32", info.output_name);
    println!("  sha256 {}", info.sha256);
    Ok(())
}
