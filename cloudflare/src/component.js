// Instantiate the transpiled sync component (gen/, from scripts/build.mjs) with its imports.
// workerd cannot compile wasm at run time, so the core modules are imported statically
// (wrangler bundles them as CompiledWasm).
import { instantiate } from '../gen/guest.js'
import core1 from '../gen/guest.core.wasm'
import core2 from '../gen/guest.core2.wasm'
import core3 from '../gen/guest.core3.wasm'
import * as cli from '@bytecodealliance/preview2-shim/cli'
import * as clocks from '@bytecodealliance/preview2-shim/clocks'
import * as io from '@bytecodealliance/preview2-shim/io'
import * as random from '@bytecodealliance/preview2-shim/random'

const cores = { 'guest.core.wasm': core1, 'guest.core2.wasm': core2, 'guest.core3.wasm': core3 }

/** What WASI gives a component here: clocks, randomness, stdio to the console, nothing else. */
export const wasiImports = {
  'wasi:cli/environment': cli.environment,
  'wasi:cli/exit': cli.exit,
  'wasi:cli/stderr': cli.stderr,
  'wasi:cli/stdin': cli.stdin,
  'wasi:cli/stdout': cli.stdout,
  'wasi:cli/terminal-input': cli.terminalInput,
  'wasi:cli/terminal-output': cli.terminalOutput,
  'wasi:cli/terminal-stderr': cli.terminalStderr,
  'wasi:cli/terminal-stdin': cli.terminalStdin,
  'wasi:cli/terminal-stdout': cli.terminalStdout,
  'wasi:clocks/monotonic-clock': clocks.monotonicClock,
  'wasi:clocks/wall-clock': clocks.wallClock,
  'wasi:io/error': io.error,
  'wasi:io/poll': io.poll,
  'wasi:io/streams': io.streams,
  'wasi:random/insecure-seed': random.insecureSeed,
  'wasi:random/random': random.random,
}

/** One object per interface of `wit/sync.wit` the component imports. */
export async function instantiateSync({ storage, connections, auth, telemetry, config, hooks }) {
  const imports = {
    'livestore:sync/storage': storage,
    'livestore:sync/connections': connections,
    'livestore:sync/auth': auth,
    'livestore:sync/telemetry': telemetry,
    'livestore:sync/config': config,
    'livestore:sync/hooks': hooks,
    ...wasiImports,
  }
  const instance = await instantiate((name) => cores[name], imports)
  return instance.handler
}
