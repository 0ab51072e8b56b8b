// Bundles www/ (the page, and the engine's Web Worker with the wasm package that `wasm-pack build
// --target bundler --out-dir pkg` wrote).
const path = require("path");
const HtmlWebpackPlugin = require("html-webpack-plugin");

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

module.exports = (_env, argv) => {
  const development = argv.mode === "development";
  const csp = contentSecurityPolicy(development);
  return {
    entry: "./www/index.js",
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
    plugins: [new HtmlWebpackPlugin({ template: "./www/index.html", csp })],
    devServer: {
      static: false,
      // Localhost only: patient images never leave the machine, and neither does the page.
      allowedHosts: ["localhost", "127.0.0.1"],
      // A meta tag cannot reach the worker: its script's response carries the policy too.
      headers: { "Content-Security-Policy": csp },
      client: { overlay: { warnings: false } },
    },
  };
};
