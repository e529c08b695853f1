/**
 * The tensor engine: build ONNX graphs in TypeScript, differentiate them, and run them in
 * onnxruntime-node. This module is the only one that imports onnxruntime-node.
 */
export { Graph, Tensor, GraphBuildError, OPSET } from './graph';
export type { BuiltModel, TensorSpec, ExternalData, Node, BackwardRule } from './graph';
export type { Dim, Shape } from './dims';
export type { DType, TypedArray } from './dtype';
export * as op from './ops';
export * as nn from './nn';
export { gradients } from './autodiff';
export type { GradientOptions } from './autodiff';
export { EngineSession, InputValidationError, validateFeeds, hostTensor } from './runner';
export type { HostTensor, SessionConfig } from './runner';
export { buildTraining, scheduledLearningRate } from './optim';
export type {
  TrainingConfig,
  TrainingGraph,
  OptimizerConfig,
  AdamWConfig,
  SgdConfig,
  ScheduleConfig,
  TrainableParam,
  TrainingBuildOptions,
} from './optim';
export { NonFiniteUpdateError, Trainer } from './trainer';
export type { StepMetrics, TrainerState, TrainerOptions } from './trainer';
export { Rng } from './random';
