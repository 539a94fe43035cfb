// Experiment 01 (the backward shipped before): one invocation per (vocabulary row, channel). On
// SwiftShader it took 2.7x as long as shaders/embedding.wgsl's four channels per invocation for
// 2048 tokens, V 83, D 64 (`npm run bench -- models --query 'only=none&experiments=1'`).
// Token embedding (PyTorch's nn.Embedding(V, D)): a gather forward and its scatter-add backward
// into the weight gradient. The reference is shared/layers/embedding.ts; the learned positions
// added after it are shaders/add.wgsl.
//   embedding:          y[i, k] = weight[ids[i], k]     (0 where ids[i] is not an integer in [0, V))
//   embedding_backward: dweight[v, k] (+)= sum over positions i with ids[i] == v of dy[i, k]
// Shapes: ids f32[N] (N = B*T token ids as float32 values, exact below 2^24); weight, dweight
// f32[V, D]; y, dy f32[N, D]. WGSL has no float atomics, so the backward gathers: one invocation
// per (vocabulary row, channel) walks all N positions in order, which is deterministic and costs
// V*N*D compares (small for a character vocabulary; a word vocabulary would want a sort first).
// Each entry point declares its own bindings:
//   embedding:          p, ids, weight, y
//   embedding_backward: p, ids, dy, dweight

struct Params {
  positions: u32, // N
  dim: u32,       // D
  vocab: u32,     // V
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<f32>;            // [N]
// embedding
@group(0) @binding(2) var<storage, read> weight: array<f32>;         // [V, D]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;        // [N, D]
// embedding_backward
@group(0) @binding(2) var<storage, read> dy: array<f32>;             // [N, D]
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;  // [V, D]

override WG: u32 = 64;
override ACCUMULATE: bool = false;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn embedding(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg);
  if (e >= p.positions * p.dim) {
    return;
  }
  let i = e / p.dim;
  let k = e - i * p.dim;
  let id = ids[i];
  if (id >= 0.0 && id < f32(p.vocab) && id == floor(id)) {
    y[e] = weight[u32(id) * p.dim + k];
  } else {
    y[e] = 0.0;
  }
}

@compute @workgroup_size(WG)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg);
  if (e >= p.vocab * p.dim) {
    return;
  }
  let v = f32(e / p.dim);
  let k = e % p.dim;
  var s = 0.0;
  for (var i = 0u; i < p.positions; i++) {
    if (ids[i] == v) {
      s += dy[i * p.dim + k];
    }
  }
  if (ACCUMULATE) {
    dweight[e] += s;
  } else {
    dweight[e] = s;
  }
}
