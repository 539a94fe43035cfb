import type { StopPolicy } from '../early-termination.ts';

export const banditPolicy: StopPolicy = () => ({ stop: false });
