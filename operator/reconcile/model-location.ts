/**
 * Whether pods can take their place in an OnionNetwork's model (the
 * ConfigMap's copy of spec.networkModel; README: Realistic networks): an
 * explicit spec.location must be one of its locations, or else the model
 * must place the pods' node name itself (by nodes or assign: random). Said
 * in a resource's status before its pods start, instead of by every pod
 * failing at start. LoadTest clients are the node "client"; an
 * OnionService's instances are its name.
 */
import { locationOf, type NetworkModel, parseNetworkModel } from '../../services/core/network-model.js';

/** Why `location` (or, unset, `node`) has no place in `network`'s model; null when it has, or there is no model. */
export function modelLocationProblem(
  network: string,
  location: string | undefined,
  node: string,
  modelJson: string | undefined,
): string | null {
  if (!modelJson) return null;
  const net = `OnionNetwork ${network}`;
  let model: NetworkModel;
  try {
    model = parseNetworkModel(modelJson);
  } catch (e) {
    return `${net}: ${(e as Error).message}`;
  }
  if (location !== undefined)
    return model.locations.includes(location)
      ? null
      : `spec.location: "${location}" is not a location of ${net}'s model (${model.locations.join(', ')})`;
  try {
    locationOf(model, node);
    return null;
  } catch {
    return `spec.location is needed: ${net}'s model does not place "${node}" (name it in nodes, or assign: random)`;
  }
}
