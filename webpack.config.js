// Bundles www/ (the page, and the engine's Web Worker with the wasm package that `wasm-pack build
// --target bundler --out-dir pkg` wrote, and the threaded CPU module scripts/build-threads.sh wrote
// into pkg-threads/).
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const HtmlWebpackPlugin = require("html-webpack-plugin");

// Production builds get www/sw.js (the page's offline copy) with this build's small files and a
// version derived from every file: a new build replaces the cached one, an unchanged build keeps it.
class OfflineCopyPlugin {
  apply(compiler) {
    const { Compilation, sources } = compiler.webpack;
    compiler.hooks.thisCompilation.tap("OfflineCopyPlugin", (compilation) => {
      compilation.hooks.processAssets.tap({ name: "OfflineCopyPlugin", stage: Compilation.PROCESS_ASSETS_STAGE_REPORT }, () => {
        const files = Object.keys(compilation.assets).filter((name) => name !== "sw.js").sort();
        // The wasm module is kept as the engine fetches it (see www/sw.js), never fetched twice.
        const assets = ["./", ...files.filter((name) => name !== "index.html" && !name.endsWith(".wasm")).map((name) => `./${name}`)];
        const version = crypto.createHash("sha256").update(files.map((name) => `${name}:${compilation.assets[name].size()}`).join("\n")).digest("hex").slice(0, 16);
        const template = fs.readFileSync(path.resolve(__dirname, "www/sw.js"), "utf8");
        const script = `self.MEDFOCUS_ASSETS = ${JSON.stringify(assets)};\nself.MEDFOCUS_VERSION = ${JSON.stringify(version)};\n${template}`;
        compilation.emitAsset("sw.js", new sources.RawSource(script));
      });
    });
  }
}

// The page's Content Security Policy: everything from its own origin, nothing anywhere else.
// 'wasm-unsafe-eval' lets it compile its own wasm module; blob: images are the exports. The dev
// server's live-reload socket is allowed in development builds only.
function contentSecurityPolicy(development) {
  const connect = ["'self'", ...(development ? ["ws://localhost:*", "ws://127.0.0.1:*"] : [])];
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' blob: data:",
    `connect-src ${connect.join(" ")}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}

const siteModels = path.resolve(process.env.MEDFOCUS_SITE_MODELS ?? path.join(__dirname, "models"));

module.exports = (_env, argv) => {
  const development = argv.mode === "development";
  const csp = contentSecurityPolicy(development);
  return {
    entry: "./www/main.js",
    output: {
      path: path.resolve(__dirname, "dist"),
      filename: "[name].[contenthash].js",
      clean: true,
    },
    experiments: { asyncWebAssembly: true },
    performance: {
      // The wasm module carries burn's kernels; it is large by nature, and cached by the browser.
      hints: false,
    },
    plugins: [new HtmlWebpackPlugin({ template: "./www/index.html", csp }), ...(development ? [] : [new OfflineCopyPlugin()])],
    devServer: {
      // This site's models (`medfocus weights export-web` writes models/): served at /models/
      // when the folder exists; MEDFOCUS_SITE_MODELS names another folder.
      static: fs.existsSync(siteModels) ? [{ directory: siteModels, publicPath: "/models", watch: false, serveIndex: false }] : false,
      // Localhost only: patient images never leave the machine, and neither does the page.
      allowedHosts: ["localhost", "127.0.0.1"],
      // A meta tag cannot reach the worker: its script's response carries the policy too.
      // COOP + COEP make the page cross-origin isolated, which the CPU backend's threads need
      // (SharedArrayBuffer; www/worker/wasm.js); a host serving dist/ sends the same two.
      headers: { "Content-Security-Policy": csp, "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" },
      client: { overlay: { warnings: false } },
    },
  };
};
