// Drops the two lines TensorFlow 2.21 writes to stderr when its native library loads whatever
// TF_CPP_MIN_LOG_LEVEL says (absl's pre-init warning and the oneDNN notice), and passes every
// other byte through as soon as it arrives. bin/baka.js runs the CLI with its stderr piped
// through this filter: native code writes those lines straight to file descriptor 2, which Node
// cannot redirect inside the process without a native addon of its own.

/** absl's warning, printed before the first absl log line of a process. */
export const ABSL_PRE_INIT_WARNING =
  'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR';

/** The oneDNN notice, after absl's header `I0000 00:00:<time> <thread> port.cc:153] `. */
export const ONEDNN_NOTICE =
  'oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.';

/** absl's prefix of an info line: severity and date, time, thread id, source file and line. */
const ABSL_INFO_HEADER = /^I\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.-]+:\d+\] /;
/** What the start of such a header can look like before the rest of it has arrived. */
const PARTIAL_ABSL_INFO_HEADER = /^I[\d :.]*(?:[\w.-]+(?::\d*(?:\])?)?)?$/;

/**
 * Whether a complete line (without its newline) is one of the two start-up lines.
 * @param {string} line
 */
export function isNativeStartupLine(line) {
  if (line === ABSL_PRE_INIT_WARNING) return true;
  const header = ABSL_INFO_HEADER.exec(line);
  return header !== null && line.slice(header[0].length) === ONEDNN_NOTICE;
}

/**
 * Whether the start of a line could still become one of the two start-up lines (it is then held
 * back until its newline arrives; anything else is written at once).
 * @param {string} partial
 */
function mayBecomeNativeStartupLine(partial) {
  if (ABSL_PRE_INIT_WARNING.startsWith(partial)) return true;
  const header = ABSL_INFO_HEADER.exec(partial);
  if (header !== null) return ONEDNN_NOTICE.startsWith(partial.slice(header[0].length));
  return PARTIAL_ABSL_INFO_HEADER.test(partial);
}

/**
 * A filter over a byte stream read in chunks: `write(chunk)` returns what to pass on now, `end()`
 * what is left when the stream ends. Strings are latin1, one character per byte, so any bytes
 * (UTF-8 split across chunks included) come out exactly as they went in.
 */
export function createNativeLogFilter() {
  /** The start of the current line, held back because it may still be a start-up line. */
  let held = '';
  /** The current line has already been passed on in part: the rest of it passes too. */
  let passing = false;
  return {
    /** @param {string} chunk */
    write(chunk) {
      let out = '';
      let start = 0;
      while (start < chunk.length) {
        const newline = chunk.indexOf('\n', start);
        const end = newline === -1 ? chunk.length : newline + 1;
        const piece = chunk.slice(start, end);
        start = end;
        if (passing) {
          out += piece;
        } else {
          const line = held + piece;
          held = '';
          if (newline === -1) {
            if (mayBecomeNativeStartupLine(line)) held = line;
            else out += line;
          } else if (!isNativeStartupLine(line.slice(0, -1))) {
            out += line;
          }
        }
        passing = newline === -1 && held === '';
      }
      return out;
    },
    end() {
      const rest = held;
      held = '';
      passing = false;
      return rest;
    },
  };
}
