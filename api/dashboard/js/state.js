// mazenet dashboard: who is signed in and the catalogs, shared by the pages.
import { API } from './config.js';
import { api } from './api.js';
import { toast } from './toast.js';

// state is the session-wide state of this tab: the signed-in user (GET
// /auth/me) and the service and archetype catalogs, loaded once.
export const state = {
  me: null,
  catalog: null,

  get isAdmin() { return !!this.me && this.me.role === 'admin'; },

  async loadCatalog() {
    if (this.catalog) return this.catalog;
    const [svc, arch] = await Promise.all([
      api('GET', API + '/topologies/services').catch((e) => { toast(`Service catalog: ${e.detail}`); return { services: [] }; }),
      api('GET', API + '/topologies/archetypes').catch((e) => { toast(`Archetypes: ${e.detail}`); return { archetypes: [] }; }),
    ]);
    this.catalog = { services: (svc && svc.services) || [], archetypes: (arch && arch.archetypes) || [] };
    return this.catalog;
  },
};
