/**
 * KL coefficient controllers for the per-token KL penalty.
 *
 * Adaptive: Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences", sec. 2.2:
 *   e_t = clip(KL_t / KL_target - 1, -0.2, 0.2);  beta_{t+1} = beta_t * (1 + K_beta * e_t),
 * with K_beta = n_steps / horizon (the form TRL's AdaptiveKLController uses).
 */

export interface KlController {
  readonly value: number;
  /** `currentKl`: mean per-sequence KL of the batch just used; `nSteps`: its sequence count. */
  update(currentKl: number, nSteps: number): void;
  state(): KlControllerState;
}

export interface KlControllerState {
  kind: 'fixed' | 'adaptive';
  value: number;
  target?: number;
  horizon?: number;
}

export class FixedKlController implements KlController {
  constructor(public readonly value: number) {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new Error(`KL coefficient must be a finite number >= 0, got ${value}`);
    }
  }
  update(): void {}
  state(): KlControllerState {
    return { kind: 'fixed', value: this.value };
  }
}

export class AdaptiveKlController implements KlController {
  private coef: number;

  constructor(
    initial: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    if (!(initial > 0) || !Number.isFinite(initial)) {
      throw new Error(`initial KL coefficient must be a finite number > 0, got ${initial}`);
    }
    if (!(target > 0)) throw new Error(`target KL must be > 0, got ${target}`);
    if (!(horizon > 0)) throw new Error(`KL horizon must be > 0, got ${horizon}`);
    this.coef = initial;
  }

  get value(): number {
    return this.coef;
  }

  update(currentKl: number, nSteps: number): void {
    if (!Number.isFinite(currentKl)) return; // a diverged batch must not poison the coefficient
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.coef *= 1 + (error * nSteps) / this.horizon;
  }

  state(): KlControllerState {
    return { kind: 'adaptive', value: this.coef, target: this.target, horizon: this.horizon };
  }
}

export function restoreKlController(state: KlControllerState): KlController {
  if (state.kind === 'fixed') return new FixedKlController(state.value);
  return new AdaptiveKlController(state.value, state.target!, state.horizon!);
}
