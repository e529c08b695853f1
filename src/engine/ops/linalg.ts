/** Batched matrix multiplication with numpy batch broadcasting. */
import { broadcastShapes, dimsEqual, formatShape } from '../dims';
import { Tensor } from '../graph';
import { fail, requireFloat, requireSameDType } from './common';
import { sumToShape } from './reduce';
import { reshape, transposeLast2 } from './shape';

/** a [..., M, K] @ b [..., K, N] -> [..., M, N]; both operands need rank >= 2. */
export function matMul(a: Tensor, b: Tensor): Tensor {
  const op = 'MatMul';
  requireFloat(op, [a, b]);
  const dtype = requireSameDType(op, [a, b]);
  if (a.rank < 2 || b.rank < 2) fail(op, 'operands need rank >= 2', [a, b]);
  const k1 = a.shape[a.rank - 1];
  const k2 = b.shape[b.rank - 2];
  if (!dimsEqual(k1, k2)) fail(op, `inner dims differ: ${k1} vs ${k2}`, [a, b]);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (!batch) {
    fail(
      op,
      `batch dims ${formatShape(a.shape.slice(0, -2))} and ${formatShape(b.shape.slice(0, -2))} do not broadcast`,
      [a, b],
    );
  }
  const shape = [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]];
  return a.graph.node(op, [a, b], [{ dtype, shape }], {}, { backward: matMulBackward })[0];
}

function matMulBackward(
  node: { inputs: readonly (Tensor | null)[] },
  [dy]: readonly (Tensor | null)[],
): (Tensor | null)[] {
  const [a, b] = node.inputs as Tensor[];
  const g = dy!;
  // dA = dY @ B^T (summed over broadcast batch dims of A)
  const da = sumToShape(matMul(g, transposeLast2(b)), a);
  let db: Tensor;
  if (b.rank === 2 && a.rank > 2) {
    // A weight shared over the batch: fold batch into rows, one [K, rows] @ [rows, N] product.
    const k = a.shape[a.rank - 1];
    const n = b.shape[1];
    db = matMul(transposeLast2(reshape(a, [-1, k])), reshape(g, [-1, n]));
  } else {
    db = sumToShape(matMul(transposeLast2(a), g), b);
  }
  return [da, db];
}
