//! Incremental grouping of unit vectors by meaning, with no IO.
//!
//! Existing clusters keep their members and their ids: a run only places new points. A point
//! joins the nearest existing cluster when it is at least `join` alike with its centroid.
//! The points left over are grouped among themselves, densest first: the point with the most
//! neighbours (at least `found` alike) leads a new group of the neighbours nobody claimed yet,
//! then the next; each point of a new group then moves to the group whose centroid it is
//! nearest, once, which pulls in the points a leader's ball cut off. So what a cluster means
//! never changes under it, and the cost of a run is that of its new points (times the number
//! of clusters, plus the square of the leftovers, which the caller bounds).

/// The two thresholds (cosine similarity of unit vectors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Least similarity with an existing cluster's centroid to join it.
    pub join: f32,
    /// Least similarity of two leftover points to found a group together.
    pub found: f32,
}

impl Default for Thresholds {
    /// Chosen on Banking77 (see `tests/banking77.rs` and BENCHMARKS.md).
    fn default() -> Self {
        Self {
            join: 0.55,
            found: 0.6,
        }
    }
}

/// Where a new point goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    /// Into the existing cluster at this index, with its similarity to the centroid.
    Join { cluster: usize, similarity: f32 },
    /// Into the new group at this index (of [`Placed::groups`]), with its similarity to the
    /// group's centroid.
    Found { group: usize, similarity: f32 },
}

/// The outcome of [`place`].
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// One per new point, in order.
    pub placements: Vec<Placement>,
    /// The centroid (unit length) of each new group.
    pub groups: Vec<Vec<f32>>,
}

/// Places `points` (unit vectors) into the clusters whose unit centroids are `centroids`, or
/// into new groups.
pub fn place(centroids: &[Vec<f32>], points: &[&[f32]], thresholds: Thresholds) -> Placed {
    let mut placements: Vec<Option<Placement>> = points
        .iter()
        .map(|point| {
            nearest(centroids, point)
                .filter(|&(_, similarity)| similarity >= thresholds.join)
                .map(|(cluster, similarity)| Placement::Join {
                    cluster,
                    similarity,
                })
        })
        .collect();
    let leftovers: Vec<usize> = (0..points.len())
        .filter(|&i| placements[i].is_none())
        .collect();
    let left_points: Vec<&[f32]> = leftovers.iter().map(|&i| points[i]).collect();
    let (group_of, groups) = found_groups(&left_points, thresholds.found);
    for ((&index, group), point) in leftovers.iter().zip(group_of).zip(&left_points) {
        placements[index] = Some(Placement::Found {
            group,
            similarity: dot(&groups[group], point),
        });
    }
    Placed {
        placements: placements
            .into_iter()
            .map(|p| p.expect("every point is placed"))
            .collect(),
        groups,
    }
}

/// Clusters as running sums of their members' vectors, which [`Clustering::add`] grows by a
/// batch of new points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clustering {
    /// Sum of the member vectors of each cluster (its direction is the centroid).
    pub sums: Vec<Vec<f32>>,
    pub sizes: Vec<u64>,
}

impl Clustering {
    /// Places `points` and adds them to their clusters (new groups become new clusters at the
    /// end); returns each point's cluster index and its similarity to that cluster's centroid
    /// when it was placed.
    pub fn add(&mut self, points: &[&[f32]], thresholds: Thresholds) -> Vec<(usize, f32)> {
        let centroids: Vec<Vec<f32>> = self.sums.iter().cloned().map(normalized).collect();
        let placed = place(&centroids, points, thresholds);
        let first_new = self.sums.len();
        let dims = points.first().map_or(0, |p| p.len());
        self.sums
            .extend((0..placed.groups.len()).map(|_| vec![0.0; dims]));
        self.sizes.extend((0..placed.groups.len()).map(|_| 0));
        placed
            .placements
            .iter()
            .zip(points)
            .map(|(placement, point)| {
                let (cluster, similarity) = match *placement {
                    Placement::Join {
                        cluster,
                        similarity,
                    } => (cluster, similarity),
                    Placement::Found { group, similarity } => (first_new + group, similarity),
                };
                add_into(&mut self.sums[cluster], point);
                self.sizes[cluster] += 1;
                (cluster, similarity)
            })
            .collect()
    }
}

/// Groups points densest first, then moves each to its nearest group centroid once; returns
/// each point's group and the groups' unit centroids.
fn found_groups(points: &[&[f32]], found: f32) -> (Vec<usize>, Vec<Vec<f32>>) {
    let n = points.len();
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in i + 1..n {
            if dot(points[i], points[j]) >= found {
                neighbours[i].push(j);
                neighbours[j].push(i);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    // Densest first; ties by position, so the result does not depend on sort stability.
    order.sort_by_key(|&i| (std::cmp::Reverse(neighbours[i].len()), i));
    let mut group_of: Vec<Option<usize>> = vec![None; n];
    let mut num_groups = 0;
    for leader in order {
        if group_of[leader].is_some() {
            continue;
        }
        group_of[leader] = Some(num_groups);
        for &j in &neighbours[leader] {
            group_of[j].get_or_insert(num_groups);
        }
        num_groups += 1;
    }
    let group_of: Vec<usize> = group_of.into_iter().map(|g| g.expect("claimed")).collect();
    let centroids = centroids_of(points, &group_of, num_groups);
    // One refinement pass: every point to its nearest centroid (its own group's, at worst).
    let group_of: Vec<usize> = points
        .iter()
        .zip(&group_of)
        .map(|(point, &own)| nearest(&centroids, point).map_or(own, |(g, _)| g))
        .collect();
    // Groups that lost every point are dropped and the rest renumbered in order.
    let mut renumber = vec![None; num_groups];
    let mut next = 0;
    let group_of: Vec<usize> = group_of
        .into_iter()
        .map(|g| {
            *renumber[g].get_or_insert_with(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let centroids = centroids_of(points, &group_of, next);
    (group_of, centroids)
}

/// The unit centroid of each group.
fn centroids_of(points: &[&[f32]], group_of: &[usize], num_groups: usize) -> Vec<Vec<f32>> {
    let dims = points.first().map_or(0, |p| p.len());
    let mut sums = vec![vec![0.0f32; dims]; num_groups];
    for (point, &group) in points.iter().zip(group_of) {
        add_into(&mut sums[group], point);
    }
    sums.into_iter().map(normalized).collect()
}

/// The index and similarity of the nearest centroid.
pub fn nearest(centroids: &[Vec<f32>], point: &[f32]) -> Option<(usize, f32)> {
    centroids
        .iter()
        .map(|c| dot(c, point))
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn add_into(sum: &mut [f32], v: &[f32]) {
    for (s, x) in sum.iter_mut().zip(v) {
        *s += x;
    }
}

/// `v` scaled to unit length (zero stays zero).
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        normalized(v.to_vec())
    }

    #[test]
    fn points_join_near_clusters_and_found_groups_otherwise() {
        let centroids = vec![unit(&[1.0, 0.0, 0.0])];
        let points = [
            unit(&[0.9, 0.1, 0.0]),
            unit(&[0.0, 1.0, 0.05]),
            unit(&[0.0, 0.95, 0.0]),
            unit(&[0.0, 0.0, 1.0]),
        ];
        let refs: Vec<&[f32]> = points.iter().map(Vec::as_slice).collect();
        let placed = place(
            &centroids,
            &refs,
            Thresholds {
                join: 0.8,
                found: 0.8,
            },
        );
        assert!(matches!(
            placed.placements[0],
            Placement::Join { cluster: 0, .. }
        ));
        let group = |i: usize| match placed.placements[i] {
            Placement::Found { group, .. } => group,
            other => panic!("point {i} should found a group, got {other:?}"),
        };
        assert_eq!(group(1), group(2), "the two alike points group together");
        assert_ne!(group(1), group(3));
        assert_eq!(placed.groups.len(), 2);
    }

    #[test]
    fn nothing_new_places_nothing() {
        let placed = place(&[], &[], Thresholds::default());
        assert!(placed.placements.is_empty() && placed.groups.is_empty());
    }
}
