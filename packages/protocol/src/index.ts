export { errorCodes, isErrorCode } from './errors.ts';
export type { ErrorCode, ErrorBody } from './errors.ts';
export { passwordlessTypes } from './wire.ts';
export type {
  PasswordlessType,
  SendResponse,
  User,
  VerifyResponse,
  SessionInfo,
  SessionResponse,
  DeviceSession,
  PublicConfig,
} from './wire.ts';
export { userTopic } from './realtime.ts';
export type { ProfileSyncPayload } from './realtime.ts';
