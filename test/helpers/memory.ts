// What a child process holds and reads, from /proc: resident memory as the kernel charges it (garbage
// and all), and bytes read.
import { readFile, writeFile } from "node:fs/promises";

export const MIB = 1024 * 1024;

async function statusMiB(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match?.[1]) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/**
 * Measures how far `work` raises the process's resident set above where it stood before: the peak
 * (VmHWM, reset first, so a spike between two samples counts) minus the resident set at the start.
 */
export async function rssGrowthMiB(
  pid: number,
  work: () => Promise<unknown>,
): Promise<{ beforeMiB: number; peakMiB: number; growthMiB: number }> {
  // "5" resets the peak to the current resident set (Linux ≥ 4.0, our own child).
  await writeFile(`/proc/${pid}/clear_refs`, "5");
  const beforeMiB = await statusMiB(pid, "VmRSS");
  await work();
  const peakMiB = await statusMiB(pid, "VmHWM");
  return { beforeMiB, peakMiB, growthMiB: peakMiB - beforeMiB };
}

/**
 * Bytes the process read through read(2) and its kin while `work` ran: its socket reads included, so
 * for a server this counts what it read from the database (and the requests it received).
 */
export async function bytesReadMiB(pid: number, work: () => Promise<unknown>): Promise<number> {
  const rchar = async () => {
    const io = await readFile(`/proc/${pid}/io`, "utf8");
    const match = /^rchar:\s+(\d+)/m.exec(io);
    if (!match?.[1]) throw new Error(`no rchar in /proc/${pid}/io`);
    return Number(match[1]);
  };
  const before = await rchar();
  await work();
  return ((await rchar()) - before) / MIB;
}
