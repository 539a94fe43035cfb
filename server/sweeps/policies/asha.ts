import type { StopPolicy } from '../early-termination.ts';

export const ashaPolicy: StopPolicy = () => ({ stop: false });
