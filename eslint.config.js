// ESLint (flat config) for Tollgate: typescript-eslint's recommended rules over the code, plus the
// house rule "SQL only in the data layer" (STYLE.md, ARCHITECTURE.md). The layering between folders
// is kept by dependency-cruiser (.dependency-cruiser.cjs); this file keeps what an import graph
// cannot see: SQL text and `.query(` calls outside src/db.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const TO_QUERIES =
  'Move the statement to a query module in src/db/queries (one module per table group, named functions taking `q: Queryable` first) and call that function here.';

// A string that begins (after blanks) with an SQL statement. Upper case only: that is how every
// statement in this code base is written, and it keeps sentences such as 'create a run' out.
// CREATE/ALTER/GRANT need a second SQL word so that a message starting "CREATE" is not one.
const SQL_HEAD = String.raw`^\s*(SELECT\s|INSERT\s+INTO\s|UPDATE\s+\S+\s+SET\s|DELETE\s+FROM\s|WITH\s+(RECURSIVE\s+)?\w+(\s*\([\w\s,]*\))?\s+AS\s*(NOT\s+)?(MATERIALIZED\s*)?\(|CREATE\s+(OR\s+REPLACE\s+|UNIQUE\s+|TEMP\s+|TEMPORARY\s+)*(TABLE|INDEX|SCHEMA|FUNCTION|TRIGGER|VIEW|ROLE|TYPE|SEQUENCE|EXTENSION|PROCEDURE|POLICY)\s|ALTER\s+(TABLE|INDEX|SCHEMA|FUNCTION|TRIGGER|VIEW|ROLE|TYPE|SEQUENCE|DEFAULT|DATABASE)\s|GRANT\s+\w)`;

/** The house rule "SQL only in the data layer", as ESLint rules. Exported for test/architecture.test.ts. */
export const sqlOnlyInDataLayer = {
  'no-restricted-syntax': [
    'error',
    {
      selector: `Literal[value=/${SQL_HEAD}/]`,
      message: `SQL outside the data layer (src/db). ${TO_QUERIES}`,
    },
    {
      selector: `TemplateLiteral[quasis.0.value.raw=/${SQL_HEAD}/]`,
      message: `SQL outside the data layer (src/db). ${TO_QUERIES}`,
    },
    {
      selector: "CallExpression[callee.type='MemberExpression'][callee.property.name='query']",
      message: `A \`.query(\` call outside the data layer (src/db). ${TO_QUERIES}`,
    },
  ],
};

// `pg` as a value (Pool, Client, types.setTypeParser…) opens or configures connections: that is
// src/db's job. A type-only import (`import type pg from 'pg'`) loads nothing and opens nothing;
// src/ and jobs/ pass the pool or a client as `pg.Pool`/`pg.PoolClient` so that callers pick the
// connection or transaction, so it stays allowed there. bots/ gets no pool at all (the chat seam):
// not even the type.
const PG_VALUE = {
  name: 'pg',
  allowTypeImports: true,
  message:
    "Only the data layer (src/db) imports pg as a value: open connections through src/db/connect.ts and run statements through src/db/queries. A type-only import (import type pg from 'pg') is fine.",
};
const PG_ANY = {
  name: 'pg',
  message: 'bots/ gets no pool and writes no SQL: reach the core through src/chat/index.ts (ChatCore), which picks the connection.',
};

const TYPED = ['src/**/*.ts', 'bots/**/*.ts', 'jobs/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'vitest.config.ts'];
const TESTS = ['test/**/*.ts', 'bench/**/*.ts'];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      'manifests/teams/build/**',
      'test/.artifacts/**',
      'test/fixtures/lint-violations/**',
      '.tollgate/**',
    ],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  // Type-aware recommended rules over everything tsconfig.json covers (about 20 s on 2 cores).
  {
    files: TYPED,
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `_name` says "deliberately unused" (a destructured field left out, a parameter the
      // interface requires); tsc's noUnusedLocals already catches the rest.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Our regular expressions refuse NUL and other control characters on purpose (input checks).
      'no-control-regex': 'off',
      // `async` without `await` is how an interface's method (ChatPlatform.post, Adapter.start…)
      // turns a throw into a rejection; dropping `async` would make such throws synchronous.
      '@typescript-eslint/require-await': 'off',
    },
  },
  // Tests and benchmarks read JSON bodies from fakes and pass spies around: the `any`-tracking and
  // unbound-method rules only add noise there. Everything else applies to them as to the code.
  {
    files: TESTS,
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  // manifests/ is outside tsconfig.json (a packaging script): the recommended rules without types.
  {
    files: ['manifests/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
  },
  // House rule: no non-test function over about 100 lines (issue 20 measured 8); split it into
  // named pieces with one job each. Blank lines and comments do not count.
  {
    files: ['src/**/*.ts', 'bots/**/*.ts', 'jobs/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 100, skipBlankLines: true, skipComments: true }],
    },
  },
  // The house rule "SQL only in the data layer": everywhere but src/db (and migrations, tests, bench).
  {
    files: ['src/**/*.ts', 'bots/**/*.ts', 'jobs/**/*.ts'],
    ignores: ['src/db/**'],
    rules: {
      ...sqlOnlyInDataLayer,
      'no-restricted-imports': ['error', { paths: [PG_VALUE] }],
    },
  },
  // bots/: no pg at all, not even its types.
  {
    files: ['bots/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [PG_ANY] }],
    },
  },
);
