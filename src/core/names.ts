/**
 * Kubernetes names, accepted as the API server accepts them: the one check for every name that
 * comes from outside (settings, alert labels, command-line arguments). Pure.
 */

/** RFC 1123 label: lower-case alphanumerics and '-', at most 63 characters. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: labels joined by dots. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_SUBDOMAIN = 253;

/** A namespace name (an RFC 1123 label). */
export function isNamespaceName(name: string): boolean {
  return DNS_LABEL.test(name);
}

/** The name of a Deployment (an RFC 1123 subdomain of at most 253 characters). */
export function isObjectName(name: string): boolean {
  return name.length <= MAX_SUBDOMAIN && DNS_SUBDOMAIN.test(name);
}
