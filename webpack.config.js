// Three bundles: the extension host code, the model host (trainer) process, and the webview
// scripts. onnxruntime-node is a native addon, so it stays external and ships in node_modules.
const path = require('path');
const webpack = require('webpack');

const tsRule = {
  test: /\.ts$/,
  exclude: /node_modules/,
  use: [{ loader: 'ts-loader', options: { transpileOnly: true } }],
};

/** @type {(env: unknown, argv: {mode?: string}) => import('webpack').Configuration[]} */
module.exports = (_env, argv) => {
  const mode = argv.mode === 'development' ? 'development' : 'production';
  const common = {
    mode,
    devtool: mode === 'development' ? 'source-map' : false,
    resolve: { extensions: ['.ts', '.js'] },
    module: { rules: [tsRule] },
    performance: { hints: false },
  };
  return [
    {
      ...common,
      name: 'extension',
      target: 'node',
      entry: { extension: './src/extension/extension.ts' },
      output: {
        path: path.resolve(__dirname, 'dist'),
        filename: '[name].js',
        libraryTarget: 'commonjs2',
      },
      externals: { vscode: 'commonjs vscode', 'onnxruntime-node': 'commonjs onnxruntime-node' },
    },
    {
      ...common,
      name: 'modelHost',
      target: 'node',
      entry: { modelHost: './src/host/main.ts', cli: './src/cli/main.ts' },
      output: {
        path: path.resolve(__dirname, 'dist'),
        filename: '[name].js',
        libraryTarget: 'commonjs2',
      },
      externals: { 'onnxruntime-node': 'commonjs onnxruntime-node' },
      // dist/cli.js is the package's `bin`, so it needs an interpreter line.
      plugins: [
        new webpack.BannerPlugin({
          banner: '#!/usr/bin/env node',
          raw: true,
          include: /^cli\.js$/,
        }),
      ],
    },
    {
      ...common,
      name: 'webview',
      target: 'web',
      entry: { compare: './webview/compare/main.ts', dashboard: './webview/dashboard/main.ts' },
      output: { path: path.resolve(__dirname, 'dist', 'webview'), filename: '[name].js' },
    },
  ];
};
