/**
 * Reverse-mode automatic differentiation over a Graph. Each node's backward rule emits ordinary
 * ONNX ops into the same graph; gradients of tensors used more than once are summed.
 */
import { formatShape } from './dims';
import { GraphBuildError, Node, Tensor } from './graph';
import * as op from './ops';

export interface GradientOptions {
  /** Gradient of the loss itself (default: 1, for a scalar loss). */
  seed?: Tensor;
}

/**
 * Gradients of `loss` with respect to each tensor of `wrt` (the trainable tensors: graph inputs
 * or initializers, or any intermediate). Everything not in `wrt` is treated as frozen: no
 * gradient is computed for it, and nodes that depend only on frozen tensors get no backward ops.
 * A tensor the loss does not depend on gets a zero gradient.
 */
export function gradients(
  loss: Tensor,
  wrt: readonly Tensor[],
  options: GradientOptions = {},
): Tensor[] {
  const g = loss.graph;
  for (const t of wrt) {
    if (t.graph !== g) throw new GraphBuildError(`gradients: ${t.name} belongs to another graph`);
  }
  if (!options.seed && loss.rank !== 0) {
    throw new GraphBuildError(
      `gradients: loss ${loss.name}${formatShape(loss.shape)} must be a scalar, or pass a seed`,
    );
  }
  const lastNode = loss.producer ? g.nodes.indexOf(loss.producer) : -1;
  const forward = g.nodes.slice(0, lastNode + 1);

  // Tensors that depend on a trainable tensor through differentiable inputs.
  const dependent = new Set<Tensor>(wrt);
  for (const node of forward) {
    const active = gradientSources(node).some(
      (t, i) => t && dependent.has(t) && !node.nonDifferentiable?.includes(i),
    );
    if (active) for (const o of node.outputs) dependent.add(o);
  }

  const grads = new Map<Tensor, Tensor>();
  grads.set(loss, options.seed ?? g.scalar(1, loss.dtype));
  const accumulate = (t: Tensor, grad: Tensor, node: Node) => {
    if (grad.rank !== t.rank || grad.dtype !== t.dtype) {
      throw new GraphBuildError(
        `gradients: ${node.opType} backward gave ${grad.dtype}${formatShape(grad.shape)} for ${t}`,
      );
    }
    const previous = grads.get(t);
    grads.set(t, previous ? op.add(previous, grad) : grad);
  };

  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (!node.outputs.some((o) => dependent.has(o))) continue;
    const dOutputs = node.outputs.map((o) => grads.get(o) ?? null);
    if (dOutputs.every((d) => d === null)) continue;
    if (!node.backward) {
      const operands = node.inputs
        .filter((t): t is Tensor => t !== null)
        .map(String)
        .join(', ');
      throw new GraphBuildError(
        `gradients: ${node.opType} has no backward rule (operands: ${operands})`,
      );
    }
    const dInputs = node.backward(node, dOutputs);
    gradientSources(node).forEach((t, k) => {
      if (!t || !dependent.has(t) || node.nonDifferentiable?.includes(k)) return;
      const d = dInputs[k];
      if (d) accumulate(t, d, node);
    });
  }
  return wrt.map((t) => grads.get(t) ?? op.zerosLike(t));
}

/** The tensors a node's backward rule returns gradients for. */
function gradientSources(node: Node): readonly (Tensor | null)[] {
  return node.gradientInputs ?? node.inputs;
}
