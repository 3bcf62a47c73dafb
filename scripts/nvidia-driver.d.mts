/**
 * Whether an NVIDIA driver is present, the line that shows it (or what was looked for), and one
 * line per GPU (nvidia-smi -L) or the driver file's version line.
 */
export function detectNvidiaDriver(env?: NodeJS.ProcessEnv): {
  found: boolean;
  detail: string;
  devices: string[];
};
