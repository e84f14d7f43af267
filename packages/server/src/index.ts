export { createApp } from './app.ts';
export type { App, AppState } from './app.ts';
export { loadConfig, redactConfig, ConfigError } from './config/config.ts';
export type { Config, Env } from './config/config.ts';
export { createDeps, startServer, runMigrations, loadAllMigrations, migrationDirs, createLogger } from './server.ts';
export type { RunningServer, DepsOverrides } from './server.ts';
export type { Deps, Clock } from './deps.ts';
export { AppError } from './shared/errors.ts';
