import type { StopPolicy } from '../early-termination.ts';

export const truncationPolicy: StopPolicy = () => ({ stop: false });
