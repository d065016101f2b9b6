// The BinderHub JavaScript client follows /build/... to `ready`; then @jupyterlab/services starts
// a kernel through minibinder's proxy and runs code over the kernel WebSocket.
// Usage: node binder_client.mjs <minibinder base URL> <provider/spec> <python code>
// Prints one JSON line: {phases, ready, output} (exit 0) or {phases, error} (exit 1).
import { BinderRepository } from "@jupyterhub/binderhub-client/client.js";
import { KernelManager, ServerConnection } from "@jupyterlab/services";
import WebSocket from "ws";

// fetch-event-source expects a browser's window and document; give it the parts it uses, after
// the imports so that @jupyterlab/services still sees Node.
globalThis.window = { fetch: globalThis.fetch.bind(globalThis), setTimeout, clearTimeout };
globalThis.document = { cookie: "", hidden: false, addEventListener() {}, removeEventListener() {} };

const [base, spec, code] = process.argv.slice(2);
const phases = [];
const repository = new BinderRepository(spec, new URL("build/", base));
let ready = null;
for await (const event of repository.fetch()) {
  phases.push(event.phase);
  if (event.phase === "ready") {
    ready = event;
    repository.close();
    break;
  }
  if (event.phase === "failed") {
    repository.close();
    console.log(JSON.stringify({ phases, error: event.message }));
    process.exit(1);
  }
}

// The event stream is done: take the browser shims away again before using Jupyter's client.
delete globalThis.window;
delete globalThis.document;
const serverSettings = ServerConnection.makeSettings({
  baseUrl: ready.url,
  wsUrl: ready.url.replace(/^http/, "ws"),
  token: ready.token,
  appendToken: true,
  WebSocket,
});
const kernels = new KernelManager({ serverSettings });
const kernel = await kernels.startNew({ name: "python3" });
const future = kernel.requestExecute({ code });
let output = "";
future.onIOPub = (message) => {
  if (message.header.msg_type === "stream") {
    output += message.content.text;
  }
};
await future.done;
await kernel.shutdown();
kernels.dispose();
console.log(JSON.stringify({ phases, ready, output }));
process.exit(0);
