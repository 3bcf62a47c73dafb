/** Whether an NVIDIA driver is present, and the line that shows it (or what was looked for). */
export function detectNvidiaDriver(env?: NodeJS.ProcessEnv): { found: boolean; detail: string };
