//! Checkpoints in safetensors format: every parameter and buffer under `<layer>.<name>`, the
//! optimizer's velocity under `velocity.<param name>`, a weight average's tensors under
//! `ema.<name>` (runs with `--ema`), and the training progress (epochs done,
//! step, metrics so far) as JSON in the file's metadata. Written atomically after every epoch.

use crate::error::{Error, Result};
use crate::models::Model;
use crate::run::run_dir::write_atomic;
use crate::train::ema::Ema;
use crate::train::optimizer::Sgd;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Where training stands; stored in the checkpoint's metadata.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Steps completed.
    pub step: u64,
    /// One JSON object per completed epoch (the lines of metrics.jsonl).
    pub metrics: Vec<serde_json::Value>,
    /// Seconds spent training so far (excluding evaluation).
    pub train_seconds: f64,
    /// Training images processed so far.
    pub images: u64,
    /// Operation counters per matrix layer so far.
    #[serde(default)]
    pub counters: Vec<crate::counters::LayerReport>,
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Save model, optimizer and progress to `path` atomically.
pub fn save(
    path: &Path,
    model: &mut Model,
    opt: &Sgd,
    progress: &Progress,
    ema: Option<&Ema>,
) -> Result<()> {
    let mut named: Vec<(String, Vec<u8>, usize)> = Vec::new();
    let params = model.params();
    for (i, (name, p)) in params.iter().enumerate() {
        named.push((name.clone(), to_bytes(p.value), p.value.len()));
        if let Some(v) = opt.velocity.get(i) {
            named.push((format!("velocity.{name}"), to_bytes(v), v.len()));
        }
    }
    drop(params);
    for (name, b) in model.buffers() {
        named.push((name, to_bytes(b), b.len()));
    }
    for (name, v) in ema.into_iter().flat_map(|e| e.named()) {
        named.push((name, to_bytes(v), v.len()));
    }
    let views: Vec<(String, TensorView<'_>)> = named
        .iter()
        .map(|(n, b, len)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, vec![*len], b).unwrap(),
            )
        })
        .collect();
    let meta = HashMap::from([(
        "progress".to_string(),
        serde_json::to_string(progress).expect("progress serializes"),
    )]);
    let bytes = safetensors::serialize(views, &Some(meta)).map_err(|e| Error::Checkpoint {
        path: path.into(),
        what: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Load a checkpoint into `model`, `opt` and `ema`; returns the progress it recorded.
pub fn load(
    path: &Path,
    model: &mut Model,
    opt: &mut Sgd,
    ema: Option<&mut Ema>,
) -> Result<Progress> {
    let bad = |what: String| Error::Checkpoint {
        path: path.into(),
        what,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        bad(format!(
            "not a readable safetensors file ({e}); truncated or corrupt"
        ))
    })?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let progress: Progress = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("progress"))
        .ok_or_else(|| bad("no progress metadata".into()))
        .and_then(|s| serde_json::from_str(s).map_err(|e| bad(e.to_string())))?;
    let read = |name: &str, dst: &mut Vec<f32>| -> Result<()> {
        let t = st
            .tensor(name)
            .map_err(|_| bad(format!("missing tensor {name}")))?;
        if t.dtype() != Dtype::F32 || t.data().len() != dst.len() * 4 {
            return Err(bad(format!("tensor {name} has the wrong type or size")));
        }
        for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    };
    let mut velocity = Vec::new();
    for (name, p) in model.params() {
        read(&name, p.value)?;
        let mut v = vec![0.0; p.value.len()];
        read(&format!("velocity.{name}"), &mut v)?;
        velocity.push(v);
    }
    opt.velocity = velocity;
    for (name, b) in model.buffers() {
        read(&name, b)?;
    }
    for (name, v) in ema.into_iter().flat_map(|e| e.named_mut()) {
        read(&name, v)?;
    }
    Ok(progress)
}
