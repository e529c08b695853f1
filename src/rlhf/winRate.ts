// The win-rate math lives in src/data so that the extension (which may import data, not rlhf)
// reports blind A/B results with the same formula the trainer's evaluation uses.
export { formatWinRate, wilsonInterval, winRate, type WinRate } from '../data/winRate';
