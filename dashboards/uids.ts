// Dashboard uids: stable, they appear in links between dashboards and in bookmarks.
export const UID = {
  fleet: 'revokescope-fleet',
  rollout: 'revokescope-rollout',
  device: 'revokescope-device',
  collectors: 'revokescope-collectors',
} as const;
