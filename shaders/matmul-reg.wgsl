// The register-blocked matmul's stores and entry point, shared by both loaders: it is appended to
// shaders/matmul.wgsl (scalar loads, any shape) or shaders/matmul-vec4.wgsl (vec4 loads), which
// declare the bindings `c` and `p`, the overrides BM, BN, WG_X, WG_Y and `load_a`/`load_b`.
// (WGSL has no includes; client/gpu/ops/matmul.ts joins the sources.)

// C += op(A)·op(B) instead of C = op(A)·op(B): a gradient summed over micro-batches in place.
override ACCUMULATE: bool = false;

// Every kernel of the family writes C through here.
fn store_one(at: u32, v: f32) {
  if (ACCUMULATE) {
    c[at] += v;
  } else {
    c[at] = v;
  }
}

// Row i, columns j0..j0+3 of C; the tails of M and N are skipped.
fn store_row(i: u32, j0: u32, v: vec4f) {
  if (i >= p.m) { return; }
  let at = i * p.n + j0;
  if (j0 + 3u < p.n) {
    store_one(at, v.x);
    store_one(at + 1u, v.y);
    store_one(at + 2u, v.z);
    store_one(at + 3u, v.w);
    return;
  }
  store_one(at, v.x);
  if (j0 + 1u < p.n) { store_one(at + 1u, v.y); }
  if (j0 + 2u < p.n) { store_one(at + 2u, v.z); }
}

// The 4x4 sub-block of C at (i0, j0); column r of `blk` is its row r.
fn store_block(i0: u32, j0: u32, blk: mat4x4f) {
  if (j0 >= p.n) { return; }
  store_row(i0, j0, blk[0]);
  store_row(i0 + 1u, j0, blk[1]);
  store_row(i0 + 2u, j0, blk[2]);
  store_row(i0 + 3u, j0, blk[3]);
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_reg(@builtin(global_invocation_id) gid: vec3u) {
  let j0 = gid.x * BN;
  let i0 = gid.y * BM;
  if (j0 >= p.n || i0 >= p.m) { return; }
  // accRC: the 4x4 sub-block at rows i0 + 4R, columns j0 + 4C. Column r of each is row r of
  // the sub-block, so one step along K is acc += B-block * A-block (see load_a and load_b).
  var acc00 = mat4x4f();
  var acc01 = mat4x4f();
  var acc10 = mat4x4f();
  var acc11 = mat4x4f();
  let steps = (p.k + 3u) / 4u;
  for (var t = 0u; t < steps; t++) {
    let b0 = load_b(t, j0);
    let a0 = load_a(i0, t);
    acc00 += b0 * a0;
    if (BN == 8u) {
      let b1 = load_b(t, j0 + 4u);
      acc01 += b1 * a0;
      if (BM == 8u) {
        let a1 = load_a(i0 + 4u, t);
        acc10 += b0 * a1;
        acc11 += b1 * a1;
      }
    } else if (BM == 8u) {
      acc10 += b0 * load_a(i0 + 4u, t);
    }
  }
  store_block(i0, j0, acc00);
  if (BN == 8u) { store_block(i0, j0 + 4u, acc01); }
  if (BM == 8u) { store_block(i0 + 4u, j0, acc10); }
  if (BM == 8u && BN == 8u) { store_block(i0 + 4u, j0 + 4u, acc11); }
}
