//! `trove demo`: a small store that shows what trove is for, built through the same library calls as
//! every other command, then toured.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;
use trove::model::lineage::Lineage;
use trove::model::{DatasetPath, Ref};
use trove::{ComputeOptions, DatasetEdit, FileImport, Store, WriteOptions};

use crate::output::{self, Out};

/// A small deterministic generator, so every demo store is the same.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

pub fn run(dir: &Path, out: &mut Out) -> Result<()> {
    if dir.join(trove::CONFIG_FILE).exists() {
        bail!("{} already holds a trove store: remove it or pick another folder (`trove demo DIR`)", dir.display());
    }
    let store = Store::init_with(dir, false)?;
    let scratch = tempfile::tempdir().context("cannot make a temporary folder")?;
    let mut rng = Lcg(2024);

    store.create_project(
        "lab",
        &[
            ("institute".into(), json!("Materials Physics Lab")),
            ("instrument".into(), json!({"name": "tensile-rig-2", "calibrated": "2024-01-15"})),
        ],
    )?;
    store.create_project("sim", &[("code".into(), json!("flowsolve")), ("code_version".into(), json!("3.2.1"))])?;

    // 240 tensile measurements over two years, as one ingest (one commit per batch).
    let materials = ["steel", "aluminium", "copper", "titanium"];
    let operators = ["ada", "grace", "marie", "rosalind"];
    let mut lines = String::new();
    for i in 0..240 {
        let year = if i < 120 { 2023 } else { 2024 };
        let material = rng.pick(&materials);
        let temperature = round(290.0 + rng.unit() * 30.0, 1);
        let mut tags = vec![material.to_string()];
        if rng.unit() < 0.7 {
            tags.push("calibrated".into());
        }
        if rng.unit() < 0.2 {
            tags.push("reviewed".into());
        }
        let line = json!({
            "path": format!("lab/runs/{year}/r{:03}", i + 1),
            "kind": "measurement",
            "metadata": {
                "material": material,
                "temperature": temperature,
                "strain_rate": rng.pick(&["1e-3", "1e-2", "1e-1"]).parse::<f64>().unwrap_or(1e-3),
                "operator": rng.pick(&operators),
                "sample": {"thickness_mm": ([1, 2, 5][(rng.next() % 3) as usize]), "batch": format!("B{}", 10 + rng.next() % 5)},
                "date": format!("{year}-{:02}-{:02}", 1 + rng.next() % 12, 1 + rng.next() % 28),
            },
            "tags": tags,
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    // 64 simulations: a viscosity sweep with several seeds each.
    for v in ["0.001", "0.01", "0.1", "1.0"] {
        for seed in 0..16 {
            let converged = rng.unit() < 0.9;
            let line = json!({
                "path": format!("sim/sweeps/viscosity-{v}/seed-{seed:02}"),
                "kind": "simulation",
                "metadata": {
                    "solver": "flowsolve",
                    "viscosity": v.parse::<f64>().unwrap_or(0.0),
                    "resolution": ([64, 128, 256][(rng.next() % 3) as usize]),
                    "seed": seed,
                    "converged": converged,
                    "wall_time_s": round(100.0 + rng.unit() * 900.0, 1),
                },
                "tags": if converged { vec!["converged"] } else { vec!["failed"] },
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    }
    let report = store.ingest(lines.as_bytes(), "demo", trove::INGEST_BATCH, &mut |_, _| true)?;

    // A few datasets with real files: a stress-strain table and notes for three runs, a config for one sweep.
    for (k, run) in ["lab/runs/2024/r121", "lab/runs/2024/r122", "lab/runs/2024/r123"].iter().enumerate() {
        let csv = scratch.path().join("stress_strain.csv");
        let mut f = std::fs::File::create(&csv)?;
        writeln!(f, "strain,stress_mpa")?;
        for step in 0..200 {
            let strain = step as f64 * 0.001;
            let stress = 200_000.0 * strain.min(0.0012 + k as f64 * 0.0002) + 900.0 * strain;
            writeln!(f, "{strain:.3},{stress:.2}")?;
        }
        drop(f);
        let notes = scratch.path().join("notes.txt");
        std::fs::write(
            &notes,
            format!("Run {run}: sample clamped at 20 N pre-load; fracture observed near the upper grip.\n"),
        )?;
        let r = Ref::parse(run)?;
        let path = r.path.clone().context("demo paths have a dataset part")?;
        // The table is stored as Parquet (pandas, pyarrow and polars open it directly); notes stay text.
        let table = FileImport { as_format: Some("parquet".into()), ..FileImport::new(&csv)? };
        store.put(&r.project, &path, &DatasetEdit::default(), &[table, FileImport::new(&notes)?])?;
    }
    let config = scratch.path().join("config.json");
    std::fs::write(&config, json!({"solver": "flowsolve", "cfl": 0.4, "steps": 20000}).to_string())?;
    store.put(
        "sim",
        &DatasetPath::parse("sweeps/viscosity-0.01")?,
        &DatasetEdit {
            kind: Some("sweep".into()),
            meta: vec![("description".into(), json!("viscosity sweep, 16 seeds"))],
            ..Default::default()
        },
        &[FileImport::new(&config)?],
    )?;

    out.line(format!(
        "Built a demo store at {} ({} datasets in 2 projects).\n",
        store.root().display(),
        report.created + 1
    ))?;
    out.line("$ trove ls --tree --depth 3 sim")?;
    let mut sims = Vec::new();
    store.descendants("sim", None, |s| {
        sims.push(s);
        Ok(())
    })?;
    output::tree(out, "sim", 0, &sims, Some(3))?;
    out.line("")?;
    out.line("$ trove ls lab/runs/2024   (first 5 of 120)")?;
    for child in store.children("lab", Some(&DatasetPath::parse("runs/2024")?))?.iter().take(5) {
        if let Some(row) = &child.dataset {
            out.line(output::dataset_line(&child.name, &row.state, child.has_children))?;
        }
    }
    out.line("")?;
    out.line("$ trove show lab/runs/2024/r121")?;
    let state = store.dataset_for(&Ref::parse("lab/runs/2024/r121")?)?;
    output::show_value(out, &store.dataset_json(&state))?;
    out.line("")?;
    out.line("$ trove cat lab/runs/2024/r121:stress_strain.parquet --head 5")?;
    let mut preview = Vec::new();
    let options = trove::PreviewOptions { head: Some(5), ..Default::default() };
    store.preview(&Ref::parse("lab/runs/2024/r121:stress_strain.parquet")?, &options, &mut preview)?;
    out.line(String::from_utf8_lossy(&preview).trim_end())?;
    out.line("")?;
    // Derived data: r121's peak stress, named by what it was computed from, computed once.
    let table = Ref::parse("lab/runs/2024/r121:stress_strain.parquet")?;
    let lineage = Lineage::new("peak-stress", "1")
        .with_config("column", json!("stress_mpa"))
        .with_input(store.lineage_input(&table)?);
    let options = ComputeOptions { project: "lab".into(), ..Default::default() };
    let peak = store.get_or_compute_with(
        &lineage,
        &options,
        |out| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let csv = scratch.path().join("table.csv");
            store.export_converted(&table, &csv, "csv", &WriteOptions::default())?;
            let text = std::fs::read_to_string(&csv)?;
            let peak = text
                .lines()
                .skip(1)
                .filter_map(|line| line.split(',').nth(1)?.parse::<f64>().ok())
                .fold(f64::MIN, f64::max);
            std::fs::write(out.file("peak.json")?, json!({ "peak_stress_mpa": peak }).to_string())?;
            out.set_meta("peak_stress_mpa", json!(peak));
            Ok(())
        },
    )?;
    out.line(format!("$ trove lineage {}", peak.reference))?;
    crate::compute::lineage(&store, &peak.reference.to_string(), false, out)?;
    out.line("")?;
    out.line(format!(
        "Try next:\n  cd {}\n  trove ls lab/runs\n  trove show lab/runs/2024/r121 --inherited\n  trove get lab/runs/2024/r121:stress_strain.parquet --as csv -o -\n  trove meta set lab/runs/2023/r001 reviewer=ada\n  trove mv sim/sweeps sim/archive/sweeps\n  trove ls --tree lab\n  trove find --lineage-name peak-stress\n  trove compute peak-stress --version 1 --config column=stress_mpa --input lab/runs/2024/r121:stress_strain.parquet -- false   (found: nothing runs)",
        store.root().display()
    ))?;
    Ok(())
}
