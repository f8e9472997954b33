/**
 * The layering of ARCHITECTURE.md and STYLE.md ("One data layer, and layering kept by tools"), as
 * dependency-cruiser rules. Run by `npm run lint` (`depcruise src bots jobs --config .dependency-cruiser.cjs`).
 * docs/layering.md explains the layers; test/architecture.test.ts shows each rule failing on a
 * deliberate violation (test/fixtures/lint-violations/).
 *
 * Layers, lowest first; a module may import its own layer and the layers below, never above:
 *   src/common
 *   src/db                                   (the data layer)
 *   src/{runtime,approvals,tools,model,telemetry,audit,intents,workflows,config}
 *                                            (runtime, approvals and tools are one layer in three folders,
 *                                             ARCHITECTURE.md: "they depend on each other on purpose")
 *   src/{views,chat}                         (views never import chat)
 *   src/{console,server,cli,worker}, jobs/
 *   bots/                                    (only src/chat/index.ts, and types from src/views)
 *   src/boot                                 (the composition root's helpers: open and prepare the database)
 *   src/app.ts                               (the composition root: the one file of src/ that sees bots/)
 *
 * Paths are matched relative to the folder depcruise runs in. Packages are matched by
 * `(^|/)node_modules/<name>/` so that the rules also hold when the base folder is elsewhere (the fixtures).
 */

const CORE = '^src/(runtime|approvals|tools|model|telemetry|audit|intents|workflows|config)/';
const VIEWS_CHAT = '^src/(views|chat)/';
const EDGES = '^(src/(console|server|cli|worker)/|jobs/)';
const BOTS = '^bots/';
const APP = '^src/app\\.ts$';
const OURS = '^(src|bots|jobs)/';
const CHAT_SDK = '(^|/)node_modules/(@slack/|botbuilder)';
const PG = '(^|/)node_modules/(pg|@types/pg)/';
const TYPE_ONLY = ['type-only', 'type-import'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import circles (issue 20: 0). Break the circle: move the shared piece down a layer, or pass it in.',
      from: {},
      to: { circular: true },
    },

    // --- src/ and bots/ -------------------------------------------------------------------------
    {
      name: 'src-not-to-bots',
      severity: 'error',
      comment: 'src/ is platform-neutral: nothing in it imports bots/, except the composition root src/app.ts.',
      from: { path: '^src/', pathNot: APP },
      to: { path: BOTS },
    },
    {
      name: 'app-sees-only-adapter-list',
      severity: 'error',
      comment: 'src/app.ts imports only bots/index.ts (the adapter list) and sees what it returns as ChatAdapters.',
      from: { path: APP },
      to: { path: BOTS, pathNot: '^bots/index\\.ts$' },
    },
    {
      name: 'no-cross-platform',
      severity: 'error',
      comment: 'One platform folder never imports another (bots/slack <-> bots/teams): what both need moves into src/chat or src/views.',
      from: { path: '^bots/([^/]+)/' },
      to: { path: '^bots/[^/]+/', pathNot: '^bots/$1/' },
    },
    {
      name: 'bots-only-chat-entry',
      severity: 'error',
      comment: "bots/<platform> reaches the core only through src/chat/index.ts (the chat layer's public entry point) and the view types of src/views.",
      from: { path: BOTS },
      to: { path: '^(src|jobs)/', pathNot: '^src/(chat/index\\.ts$|views/)' },
    },
    {
      name: 'bots-views-types-only',
      severity: 'error',
      comment: 'bots/ renders views it is handed: from src/views it imports types only (import type …). A view is built by the chat layer.',
      from: { path: BOTS },
      to: { path: '^src/views/', dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'bots-no-pg',
      severity: 'error',
      comment: 'bots/ gets no pool and writes no SQL, so it does not import pg at all (not even its types).',
      from: { path: BOTS },
      to: { path: PG },
    },
    {
      name: 'src-no-chat-sdk',
      severity: 'error',
      comment: 'Nothing in src/ imports a chat SDK (@slack/*, botbuilder): a platform is reached only through ChatPlatform, implemented in bots/.',
      from: { path: '^src/' },
      to: { path: CHAT_SDK },
    },

    // --- the data layer ---------------------------------------------------------------------------
    {
      name: 'pg-value-only-in-db',
      severity: 'error',
      comment: "Only the data layer (src/db) imports pg as a value. Elsewhere `import type pg from 'pg'` is fine (a pool handed in).",
      from: { path: OURS, pathNot: '^src/db/' },
      to: { path: PG, dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'db-imports-only-db-and-common',
      severity: 'error',
      comment: 'The data layer (src/db) imports only src/db and src/common. Declare row types in the query module.',
      from: { path: '^src/db/' },
      to: { path: OURS, pathNot: '^src/(db|common)/', dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'db-type-imports-from-above',
      severity: 'warn',
      comment: 'A type-only import of a higher layer from src/db is tolerated only if unavoidable (STYLE.md); prefer declaring the type in the query module.',
      from: { path: '^src/db/' },
      to: { path: OURS, pathNot: '^src/(db|common)/', dependencyTypes: TYPE_ONLY },
    },
    {
      name: 'common-imports-only-common',
      severity: 'error',
      comment: 'src/common is the bottom layer: it imports nothing of ours outside src/common.',
      from: { path: '^src/common/' },
      to: { path: OURS, pathNot: '^src/common/' },
    },

    // --- layer order: a lower layer never imports a higher one -------------------------------------
    {
      name: 'runtime-no-chat',
      severity: 'error',
      comment: 'src/runtime never imports src/chat, src/views, bots/ or a chat SDK: it knows principals and ids, never Slack or Teams.',
      from: { path: '^src/runtime/' },
      to: { path: `^src/(chat|views)/|${BOTS}|${CHAT_SDK}` },
    },
    {
      name: 'core-not-to-higher',
      severity: 'error',
      comment:
        'runtime, approvals, tools, model, telemetry, audit, intents, workflows and config sit below views/chat, the edges (console, server, cli, worker, jobs), bots and the composition root.',
      from: { path: CORE },
      to: { path: `^src/(views|chat|console|server|cli|worker)/|^jobs/|${BOTS}|${APP}` },
    },
    {
      name: 'views-chat-not-to-higher',
      severity: 'error',
      comment: 'src/views and src/chat sit below the edges (console, server, cli, worker, jobs), bots and the composition root.',
      from: { path: VIEWS_CHAT },
      to: { path: `${EDGES}|${BOTS}|${APP}` },
    },
    {
      name: 'views-not-to-chat',
      severity: 'error',
      comment: 'src/views imports nothing from src/chat: views are pure functions of stored rows, rendered by every platform.',
      from: { path: '^src/views/' },
      to: { path: '^src/chat/' },
    },
    {
      name: 'edges-not-to-bots',
      severity: 'error',
      comment: 'console, server, cli, worker and jobs/ never import bots/: src/app.ts wires the adapters in.',
      from: { path: EDGES },
      to: { path: BOTS },
    },
    {
      name: 'edges-not-to-app',
      severity: 'error',
      comment:
        "console, server, cli, worker and jobs/ never import the composition root. Named in ARCHITECTURE.md: the CLI boots through startApp (src/cli, only by `await import`: cli-loads-app-lazily) and the worker thread's entry (src/worker/thread.ts) builds its core with the functions startApp uses.",
      from: { path: EDGES, pathNot: '^src/(cli/|worker/thread\\.ts$)' },
      to: { path: APP },
    },
    {
      name: 'cli-loads-app-lazily',
      severity: 'error',
      comment:
        'A command imports what it uses when it runs (ARCHITECTURE.md): src/cli reaches src/app.ts only by `await import(…)` (or for types); a static import costs every command.',
      from: { path: '^src/cli/' },
      to: { path: APP, dependencyTypesNot: ['dynamic-import', ...TYPE_ONLY] },
    },
    {
      name: 'nothing-imports-app',
      severity: 'error',
      comment: 'src/app.ts is the composition root: nothing of ours imports it (the CLI loads it with `await import` from src/cli only).',
      from: { path: '^(bots|jobs)/' },
      to: { path: APP },
    },
    {
      name: 'boot-only-from-app',
      severity: 'error',
      comment:
        'src/boot joins the data layer with the configuration and the audit key for the composition root; only src/app.ts imports it (src/boot itself imports the layers below the edges).',
      from: { path: '^(src|bots|jobs)/', pathNot: ['^src/app\\.ts$', '^src/boot/'] },
      to: { path: '^src/boot/' },
    },
    {
      name: 'intents-pure',
      severity: 'error',
      comment:
        'src/intents/command.ts and authorize.ts are pure: they import only src/common/principals.ts, src/config/project-config.ts and src/common/errors.ts.',
      from: { path: '^src/intents/(command|authorize)\\.ts$' },
      to: { path: OURS, pathNot: '^src/(common/principals|config/project-config|common/errors)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
