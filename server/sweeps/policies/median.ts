import type { StopPolicy } from '../early-termination.ts';

export const medianPolicy: StopPolicy = () => ({ stop: false });
