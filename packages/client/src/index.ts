export { createHallpassClient, wsUrl } from './client.ts';
export type { AuthEvent, AuthState, HallpassClient, HallpassClientOptions } from './client.ts';
export { HallpassError, parseRetryAfter } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export type { DataApi, SelectOptions } from './data.ts';
export type { LiveStatus, ProfileChange, ProfileHandlers, ProfileSubscription } from './realtime.ts';
export type { TabEnvironment } from './tabs.ts';
export type { DeviceSession, PublicConfig, SendResponse, SessionResponse, User, VerifyResponse, ErrorCode } from '@hallpass/protocol';
