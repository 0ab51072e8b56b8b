// Bundles www/ with the wasm package that `wasm-pack build --target bundler --out-dir pkg` wrote.
const path = require("path");
const HtmlWebpackPlugin = require("html-webpack-plugin");

module.exports = {
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
  plugins: [new HtmlWebpackPlugin({ template: "./www/index.html" })],
  devServer: {
    static: false,
    // Localhost only: patient images never leave the machine, and neither does the page.
    allowedHosts: ["localhost", "127.0.0.1"],
    client: { overlay: { warnings: false } },
  },
};
