// Experiment 02: the classic tiled kernel. A TILE x TILE workgroup stages one tile of A and one of
// B in workgroup memory per step along K, so each value is read from storage once per workgroup
// instead of once per output. Any M, N, K (out-of-range tile entries are zeros).
// @bench wg=16x16 block=1x1

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;        // [M, K]
@group(0) @binding(1) var<storage, read> b: array<f32>;        // [K, N]
@group(0) @binding(2) var<storage, read_write> c: array<f32>;  // [M, N]
@group(0) @binding(3) var<uniform> p: Params;

override TILE: u32 = 16;

var<workgroup> tile_a: array<f32, TILE * TILE>; // [row in tile, k in tile]
var<workgroup> tile_b: array<f32, TILE * TILE>; // [k in tile, col in tile]

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y * TILE + lid.y;
  let col = wg.x * TILE + lid.x;
  var sum = 0.0;
  for (var t = 0u; t < p.k; t += TILE) {
    let ak = t + lid.x;
    let bk = t + lid.y;
    tile_a[lid.y * TILE + lid.x] = select(0.0, a[row * p.k + ak], row < p.m && ak < p.k);
    tile_b[lid.y * TILE + lid.x] = select(0.0, b[bk * p.n + col], bk < p.k && col < p.n);
    workgroupBarrier();
    for (var i = 0u; i < TILE; i++) {
      sum += tile_a[lid.y * TILE + i] * tile_b[i * TILE + lid.x];
    }
    workgroupBarrier();
  }
  if (row < p.m && col < p.n) {
    c[row * p.n + col] = sum;
  }
}
