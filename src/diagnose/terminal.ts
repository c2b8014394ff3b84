// The terminal side of the commands' human output: colour only on a TTY and
// never with NO_COLOR (https://no-color.org) or TERM=dumb, and a progress line
// on stderr only when stderr is a TTY, erased before each line of output.
import { ANSI, PLAIN, type Style } from './render.ts';

/** Colours for a stream: only on a TTY, and never when NO_COLOR is set (non-empty) or TERM is dumb. */
export function styleFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Style {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return stream.isTTY === true && !noColor && env.TERM !== 'dumb' ? ANSI : PLAIN;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A spinner with what is being waited for; does nothing off a TTY. */
export class Progress {
  readonly #stream: NodeJS.WriteStream;
  readonly #active: boolean;
  #text = '';
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;
  #started = 0;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#active = stream.isTTY === true;
  }

  /** Shows `text` (with a spinner and the seconds waited) until the next call or clear(). */
  set(text: string): void {
    if (!this.#active) return;
    this.#text = text;
    this.#started = performance.now();
    this.#timer ??= setInterval(() => this.#draw(), 100);
    this.#timer.unref();
    this.#draw();
  }

  #draw(): void {
    this.#frame = (this.#frame + 1) % FRAMES.length;
    const waited = ((performance.now() - this.#started) / 1000).toFixed(1);
    const line = `${FRAMES[this.#frame]} ${this.#text} ${waited}s`.slice(0, (this.#stream.columns ?? 80) - 1);
    this.#stream.write(`\r\u001b[K${line}`);
  }

  /** Erases the line (call before writing output). */
  clear(): void {
    if (this.#active && this.#text !== '') this.#stream.write('\r\u001b[K');
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.clear();
    this.#text = '';
  }
}
