/**
 * Why a backup, restore or verify stopped. Operators' errors, not API errors: the CLI prints the
 * message and exits non-zero; the scheduler logs the code and counts it.
 */
export type BackupErrorCode =
  | 'backup_invalid'
  | 'backup_not_found'
  | 'target_not_empty'
  | 'tool_missing'
  | 'tool_too_old'
  | 'data_dir_in_use'
  | 'contents_differ'
  | 'migrations_differ'
  | 'sign_in_failed';

export class BackupError extends Error {
  constructor(
    readonly code: BackupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackupError';
  }
}
