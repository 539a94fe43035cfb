// The shape convention shared by every CPU reference here and every kernel in shaders/, stated
// once: B batch (rows: one example each), C channels / features (columns), V classes (the width
// of the logits). Tensors are flat row-major arrays: x f32[B, C] holds x[b, c] at b * C + c.
// Reducing over C gives [B], over B gives [C]; a flat parameter vector is f32[N]. Comments write
// shapes as f32[B, C], u32[B]. Only the convention and a tiny length check belong in this file.

/** Throws when `a` does not hold exactly `n` values; `what` names the operand in the message. */
export function checkLength(what: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) throw new Error(`${what} has ${a.length} values, expected ${n}`);
}
