// Lint configuration (flat, typescript-eslint): few rules, each keeping an architectural
// boundary or a safety property that reviewers would otherwise have to remember.
// `test/lint/boundaries.test.ts` shows each rule failing on a deliberate violation.
import { builtinModules } from 'node:module'
import tseslint from 'typescript-eslint'

const NODE_BUILTINS = builtinModules.filter((m) => !m.startsWith('_'))
const noNode = 'the platform-neutral host must not use Node (it runs in browsers too); Node backends go in wasi-host/node/'
const oneWay = 'imports flow one way, runtime -> wasi-host: the host must not depend on the runtime'
const noNodeSyntax = [
  { selector: 'ImportExpression[source.value=/^node:/]', message: noNode },
  { selector: "CallExpression[callee.name='require']", message: noNode },
]
const noExportAll = {
  selector: 'ExportAllDeclaration',
  message: 'an entry point names what it exports (no `export *`): the public surface is chosen, not inherited',
}

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'bench/.build/',
      'bench/results/',
      'test/fixtures/',
      'tmp/',
      '**/*.d.ts',
      // AssemblyScript plugins: AssemblyScript's types and built-ins, not TypeScript's.
      'samples/plugins/*.as.ts',
    ],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // Guest-facing code is a security boundary: a value of type `any` escapes every check.
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['wasi-host/**/*.ts'],
    ignores: ['wasi-host/node/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: NODE_BUILTINS.map((name) => ({ name, message: noNode })),
          patterns: [
            { group: ['node:*'], message: noNode },
            { group: ['**/runtime', '**/runtime/**'], message: oneWay },
          ],
        },
      ],
      'no-restricted-syntax': ['error', ...noNodeSyntax],
    },
  },
  {
    files: ['wasi-host/node/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['**/runtime', '**/runtime/**'], message: oneWay }] }],
    },
  },
  {
    files: ['runtime/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/wasi-host/syscalls', '**/wasi-host/syscalls/**'],
              message: 'the runtime uses the host through its public surface (wasi-host/index.ts), not the syscall implementations',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['runtime/index.ts', 'wasi-host/node/index.ts'],
    rules: { 'no-restricted-syntax': ['error', noExportAll] },
  },
  {
    files: ['wasi-host/index.ts'],
    rules: { 'no-restricted-syntax': ['error', noExportAll, ...noNodeSyntax] },
  },
)
