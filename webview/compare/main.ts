// Entry of the comparison webview bundle (dist/webview/compare.js).
import { startCompareApp, type VsCodeApi } from './app';

declare function acquireVsCodeApi(): VsCodeApi;

startCompareApp(window, acquireVsCodeApi());
