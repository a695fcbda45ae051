// Types of scripts/demo.mjs for the TypeScript tests that build the demo.
import type { BuildContext } from 'esbuild'
export declare const DEMO_MODULES: Record<string, string>
export declare function demoContext(): Promise<BuildContext>
