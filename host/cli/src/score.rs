//! `edgescore score`: JSON lines of rows in, JSON lines of scores out, a batch per component call.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use crate::input::{Row, parse_row};
use anyhow::{Context, Result};
use clap::Args;
use edgescore_runtime::Scorer;
use serde::Serialize;

use crate::args::{ModelArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Input file of JSON lines [default: standard input]
    file: Option<PathBuf>,
    /// Rows per component call
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let model = args.model.choose()?;
    let mut scorer = Scorer::new(&args.runtime.runtime()?, &model.onnx).context(model.label)?;
    let width = scorer.info().input_width as usize;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut batch: Vec<Row> = Vec::with_capacity(args.batch_size as usize);
    for (n, line) in input.lines().enumerate() {
        let line = line.context("reading the input")?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push(parse_row(&line, width).with_context(|| format!("line {}", n + 1))?);
        if batch.len() == args.batch_size as usize {
            flush(&mut scorer, &mut batch, &mut out)?;
        }
    }
    flush(&mut scorer, &mut batch, &mut out)?;
    out.flush()?;
    Ok(())
}

/// One output line; an `f32` field prints as the shortest decimal that reads back to it.
#[derive(Serialize)]
struct Scored<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    score: f32,
}

fn flush(scorer: &mut Scorer, batch: &mut Vec<Row>, out: &mut impl Write) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let features: Vec<f32> = batch
        .iter()
        .flat_map(|r| r.features.iter().copied())
        .collect();
    let scores = scorer.score(&features)?;
    for (row, score) in batch.iter().zip(scores) {
        let line = Scored {
            user_id: row.user_id.as_deref(),
            score,
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    batch.clear();
    Ok(())
}
