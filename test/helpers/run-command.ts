// Runs a command to completion for tests that drive a CLI as a user does
// (helm, kubectl, `shallot load`): its exit code, stdout, stderr and how
// long it took, killed with SIGKILL past `timeoutMs` so a hang fails the
// test instead of holding the run.
import { spawn } from 'node:child_process';

export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CommandRun> {
  const started = Date.now();
  return new Promise<CommandRun>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.end(opts.input ?? '');
  });
}
