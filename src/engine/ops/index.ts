export * from './elementwise';
export * from './reduce';
export * from './shape';
export * from './linalg';
export { runtimeShape, runtimeDim, zerosLike, zerosOfShape } from './common';
export type { Operand } from './common';
