// mazenet dashboard: configuration and constants shared by every module.

const metaSSE = document.querySelector('meta[name="mazenet-sse-url"]');
export const SSE_BASE = ((metaSSE && metaSSE.getAttribute('content')) || '').trim().replace(/\/+$/, '');
export const API = '/api/v1';
export const TOKEN_KEY = 'mazenet.token';
export const FEED_MAX = 300;
export const REFUSALS = 5;

export const LIVE = ['active', 'degraded'];
export const CAN_DEPLOY = ['pending'];
export const CAN_TEARDOWN = ['active', 'degraded', 'failed', 'deploying'];
export const CAN_DELETE = ['pending', 'failed', 'torn_down'];
export const STATUSES = ['pending', 'deploying', 'active', 'degraded', 'failed', 'tearing_down', 'torn_down'];
export const EVENT_NAMES = ['mutation.enqueued', 'mutation.applying', 'mutation.applied', 'mutation.failed',
  'status', 'decky.service_added', 'decky.service_removed', 'decky.service_config_changed'];
