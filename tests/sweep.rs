//! Sweeps: a small grid completes with one index line per run; a sweep killed mid-way and started
//! again ends with exactly one result per run; the index survives a truncated last line; the
//! report renders; the Slurm script is valid bash and names every run once; every shipped sweep
//! file resolves.

mod common;

use common::{rram, run_ok};
use rram::run::store;
use std::path::Path;
use std::time::{Duration, Instant};

const SPEC: &str = "epochs = 1\ntrain_limit = 300\ntest_limit = 100\nthreads = 1\n[axes]\nbits = [\"4,4,4,4\", \"2,2,2,2\"]\nseed = [1, 2]\n";

/// `rram sweep` of `spec` into `dir`, run as a user types it: from the folder above, with paths
/// relative to it (the index then holds the runs' paths relative to that folder).
fn sweep(dir: &Path, spec: &str, extra: &[&str]) -> std::process::Output {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("spec.toml"), spec).unwrap();
    let name = dir.file_name().unwrap().to_str().unwrap();
    rram()
        .current_dir(dir.parent().unwrap())
        .args(["sweep", &format!("{name}/spec.toml"), "--out", name])
        .args(extra)
        .output()
        .unwrap()
}

fn index_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("index.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn small_sweep_completes_lists_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let out = sweep(&dir, SPEC, &["--jobs", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = store::read(&dir.join("index.jsonl")).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(index_lines(&dir).len(), 4);
    for e in &entries {
        assert!(
            dir.join("runs")
                .join(&e.name)
                .join("summary.json")
                .is_file()
        );
        assert!(e.version.starts_with("rram "));
    }
    // running it again trains nothing and adds nothing
    let again = sweep(&dir, SPEC, &[]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("4 finished, 0 to run"));
    assert_eq!(index_lines(&dir).len(), 4);
    // rram runs filters
    let r = rram()
        .args([
            "runs",
            dir.to_str().unwrap(),
            "--where",
            "bits=2,2,2,2",
            "--where",
            "seed=1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("| bits-")).count(),
        1,
        "{text}"
    );
    // the report renders from the folder alone, run from another directory than the sweep's
    // (the index holds the runs' paths relative to that one): energy from the measured counters
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let r = rram()
        .current_dir(&elsewhere)
        .args(["report", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| lenet5 | rram | 4,4,4,4 |") && md.contains("(n=2"),
        "{md}"
    );
    assert!(md.contains("measured") && !md.contains("analytic"), "{md}");
    assert!(md.contains("0.9767"), "paper column: {md}");
    for f in ["error_curves_uniform_0_05.svg", "tradeoff.svg"] {
        assert!(
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .starts_with("<svg"),
            "{f}"
        );
        // and its PNG rendering: a PNG signature, 1440 wide (IHDR width) and at least 960 high
        // (the plot; a line plot's legend below it adds to that)
        let png = std::fs::read(dir.join(f).with_extension("png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{f}");
        assert_eq!(&png[16..20], &[0, 0, 5, 160], "{f}");
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert!(height >= 960, "{f}: {height}");
    }
}

#[test]
fn killed_sweep_restarts_with_exactly_one_result_per_run() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    std::fs::create_dir_all(&dir).unwrap();
    let spec =
        "epochs = 2\ntrain_limit = 2000\ntest_limit = 200\nthreads = 1\n[axes]\nseed = [1, 2, 3]\n";
    let f = dir.join("spec.toml");
    std::fs::write(&f, spec).unwrap();
    let mut child = rram()
        .args([
            "sweep",
            f.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "--jobs",
            "2",
        ])
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // kill the whole process group (sweep and its trainers) once the first run is indexed
    let t0 = Instant::now();
    while index_lines(&dir).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(120), "nothing finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    // `--` so that the negative pid names the process group, never an option
    let pgid = format!("-{}", child.id());
    assert!(child.id() > 1);
    // never signal a group we are part of: the sweep must lead its own group
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    let pgrp: u32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pgrp, child.id(), "sweep is not its own process group");
    std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &pgid])
        .status()
        .unwrap();
    child.wait().unwrap();
    let before = index_lines(&dir).len();
    assert!(before < 3, "the sweep finished before it was killed");
    let out = rram()
        .args(["sweep", f.to_str().unwrap(), "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = store::read(&dir.join("index.jsonl")).unwrap();
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["seed-1", "seed-2", "seed-3"]);
    assert_eq!(
        index_lines(&dir).iter().filter(|l| !l.is_empty()).count(),
        3,
        "one line per run"
    );
}

#[test]
fn index_survives_a_truncated_last_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let out = sweep(&dir, &SPEC.replace("seed = [1, 2]", "seed = [1]"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("index.jsonl");
    let good = std::fs::read_to_string(&path).unwrap();
    let first = good.lines().next().unwrap().to_string();
    // a writer died half-way through a line
    std::fs::write(&path, format!("{good}{}", &first[..first.len() / 2])).unwrap();
    assert_eq!(store::read(&path).unwrap().len(), 2);
    let mut e = store::read(&path).unwrap()[0].clone();
    e.name = "extra".into();
    store::append(&path, &e).unwrap();
    let after = store::read(&path).unwrap();
    assert_eq!(after.len(), 3);
    assert_eq!(after[2].name, "extra");
}

#[test]
fn report_keeps_runs_that_differ_in_other_settings_apart() {
    // Two settings crossed besides the seed: each combination is its own row, named by them.
    let spec = "epochs = 1\ntrain_limit = 300\ntest_limit = 100\nthreads = 1\nbits = \"2,2,2,1\"\n\
                [axes]\ng_scale = [\"sample\", \"vector\"]\n\
                signed_input = [\"two-phase\", \"two-phase-analog\"]\nseed = [1, 2]\n";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let out = sweep(&dir, spec, &["--jobs", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_ok(&["report", dir.to_str().unwrap()]);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| settings |"), "{md}");
    for g in ["sample", "vector"] {
        for si in ["two-phase", "two-phase-analog"] {
            let row =
                format!("| lenet5 | rram | 2,2,2,1 | crossbar.signed_input={si}, g_scale={g} |");
            let line = md
                .lines()
                .find(|l| l.starts_with(&row))
                .unwrap_or_else(|| panic!("{row}\n{md}"));
            assert!(line.contains("(n=2"), "{line}");
        }
    }
}

#[test]
fn one_report_over_two_sweeps() {
    // A sweep that adds a setting to another's (as Fig. 3's 2-bit curve does): one report over
    // both, written into the first, each run read from its own sweep's folder.
    let base = "epochs = 1\ntrain_limit = 300\ntest_limit = 100\nthreads = 1\n";
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let specs = [
        (&a, format!("{base}[axes]\nbits = [\"4,4,4,4\"]\n")),
        (
            &b,
            format!("{base}g_scale = \"vector\"\n[axes]\nbits = [\"2,2,2,2\"]\nseed = [1, 2]\n"),
        ),
    ];
    for (dir, spec) in specs {
        let out = sweep(dir, &spec, &["--jobs", "2"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    run_ok(&["report", a.to_str().unwrap(), b.to_str().unwrap()]);
    let md = std::fs::read_to_string(a.join("report.md")).unwrap();
    assert!(md.contains("3 finished runs"), "{md}");
    for row in [
        "| lenet5 | rram | 4,4,4,4 | g_scale=sample |",
        "| lenet5 | rram | 2,2,2,2 | g_scale=vector |",
    ] {
        assert!(md.contains(row), "{row}\n{md}");
    }
    assert!(md.contains("measured") && !md.contains("analytic"), "{md}");
    let svg = std::fs::read_to_string(a.join("error_curves_uniform_0_05.svg")).unwrap();
    assert!(
        svg.contains("4,4,4,4") && svg.contains("2,2,2,2"),
        "both curves"
    );
    assert!(!b.join("report.md").exists());
}

#[test]
fn every_shipped_sweep_file_resolves() {
    // Emitting a job script resolves every point's config without training.
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
    let mut files = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let f = entry.unwrap().path();
        if f.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out_dir = tmp.path().join(f.file_stem().unwrap());
        let out = rram()
            .args(["sweep", f.to_str().unwrap(), "--emit", "slurm", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out_dir.join("sweep.slurm").is_file());
        files += 1;
    }
    assert!(files >= 3, "sweeps/ holds the shipped grids");
}

#[test]
fn slurm_script_is_valid_and_names_every_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slurm");
    let out = sweep(&dir, SPEC, &["--emit", "slurm"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = dir.join("sweep.slurm");
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --array=0-3"));
    for n in [
        "bits-a4-co4-w4-g4__seed-1",
        "bits-a4-co4-w4-g4__seed-2",
        "bits-a2-co2-w2-g2__seed-1",
        "bits-a2-co2-w2-g2__seed-2",
    ] {
        assert_eq!(text.matches(&format!("\"{n}\"")).count(), 1, "{n}");
        assert!(dir.join("configs").join(format!("{n}.toml")).is_file());
    }
    assert!(index_lines(&dir).is_empty(), "emitting trains nothing");
    // the table1 grid expands too
    let t = rram()
        .args([
            "sweep",
            "--grid",
            "table1",
            "--out",
            tmp.path().join("t1").to_str().unwrap(),
            "--emit",
            "slurm",
        ])
        .output()
        .unwrap();
    assert!(t.status.success());
    assert!(
        std::fs::read_to_string(tmp.path().join("t1/sweep.slurm"))
            .unwrap()
            .contains("--array=0-59")
    );
}
