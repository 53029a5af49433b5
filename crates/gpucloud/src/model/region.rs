//! One region vocabulary for both providers.
//!
//! The providers name places differently: PrimeIntellect takes only its `Regions` enum
//! (`united_states`, `eu_west`, ... eleven names; anything else is a 422), RunPod names data
//! centers (`US-KS-2`, `EU-RO-1`, `EUR-IS-1`, `CA-MTL-1`, `AP-JP-1`, `OC-AU-1`, `SEA-SG-1`) and
//! groups them by continent (`DataCenterRegion`). A `--region` value may be any of:
//!
//! | Form | Example | PrimeIntellect gets | RunPod data centers kept |
//! |---|---|---|---|
//! | PrimeIntellect region | `eu_west` | that region | those in its countries (`EU-NL-*`, `EU-FR-*`, ...) |
//! | RunPod data center or prefix | `US-KS-2`, `US-TX`, `EU` | the region(s) it lies in, and only offers in that country | those starting with it, segment by segment |
//! | Country (ISO 3166-1 alpha-2, upper case) | `DE`, `US` | the country's region, and only offers in that country | those in that country |
//! | Continent (RunPod's `DataCenterRegion`) | `europe`, `north_america` | its regions | those on it |
//!
//! Matching is by segments, so `EU` is not a prefix of `EUR-IS-1` by spelling but is Europe by
//! meaning: both `EU-*` and `EUR-*` are kept. A value none of these forms knows is an
//! [`Error::InvalidInput`] naming the forms, before any request. A value that one provider
//! cannot place (a RunPod data center id asked of PrimeIntellect, whose offers name their own
//! data centers) is translated to the nearest thing that provider can honour *and then checked
//! on each offer*: an offer is listed for a region only if its data center (or country) is
//! inside it.

use crate::model::error::{Error, Result};

/// PrimeIntellect's `Regions` enum and the countries (ISO 3166-1 alpha-2) each one holds.
const PRIME_REGIONS: [(&str, &[&str]); 11] = [
    ("united_states", &["US"]),
    ("canada", &["CA"]),
    ("eu_west", &["GB", "IE", "FR", "BE", "NL", "LU", "DE", "CH", "AT", "ES", "PT", "IT"]),
    ("eu_north", &["SE", "FI", "NO", "DK", "IS", "EE", "LV", "LT"]),
    ("eu_east", &["PL", "CZ", "SK", "HU", "RO", "BG", "GR", "HR", "SI", "RS", "UA"]),
    ("asia_northeast", &["JP", "KR", "TW", "HK", "CN"]),
    ("asia_south", &["IN", "SG", "MY", "TH", "ID", "VN", "PH"]),
    ("australia", &["AU", "NZ"]),
    ("south_america", &["BR", "AR", "CL", "CO", "PE", "UY", "MX"]),
    ("middle_east", &["AE", "SA", "IL", "QA", "TR", "BH"]),
    ("africa", &["ZA", "NG", "KE", "EG", "MA"]),
];

/// RunPod's continental regions (`DataCenterRegion`), the PrimeIntellect regions on each, and
/// the first segments of RunPod data center ids there.
const CONTINENTS: [(&str, &[&str], &[&str]); 7] = [
    ("north_america", &["united_states", "canada"], &["US", "CA"]),
    ("south_america", &["south_america"], &["SA"]),
    ("europe", &["eu_west", "eu_north", "eu_east"], &["EU", "EUR"]),
    ("asia", &["asia_northeast", "asia_south"], &["AP", "SEA"]),
    ("middle_east", &["middle_east"], &["ME"]),
    ("africa", &["africa"], &["AF"]),
    ("oceania", &["australia"], &["OC"]),
];

/// Where a RunPod data center id's country sits: `US-KS-2` and `CA-MTL-1` name their country
/// first; the continental prefixes (`EU`, `EUR`, `AP`, `SEA`, `OC`, ...) name it second.
fn runpod_country(data_center: &str) -> Option<String> {
    let mut segments = data_center.split('-');
    let first = segments.next()?;
    match first {
        "US" | "CA" => Some(first.to_string()),
        _ => segments.next().filter(|s| s.len() == 2).map(str::to_string),
    }
}

/// The PrimeIntellect region a country lies in.
fn prime_region_of(country: &str) -> Option<&'static str> {
    PRIME_REGIONS.iter().find(|(_, countries)| countries.contains(&country)).map(|(region, _)| *region)
}

fn is_country_code(text: &str) -> bool {
    text.len() == 2
        && text.bytes().all(|b| b.is_ascii_uppercase())
        && PRIME_REGIONS.iter().any(|(_, countries)| countries.contains(&text))
}

fn is_runpod_prefix(text: &str) -> bool {
    let mut segments = text.split('-');
    let first = segments.next().unwrap_or("");
    let known_first = CONTINENTS.iter().any(|(_, _, firsts)| firsts.contains(&first));
    known_first
        && text.split('-').all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
}

/// One `--region` value, resolved for both providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// As given.
    pub input: String,
    /// What PrimeIntellect's `regions=` gets (its enum only).
    pub prime_regions: Vec<&'static str>,
    /// Countries an offer must lie in, when the value is finer than a PrimeIntellect region.
    pub countries: Option<Vec<String>>,
    /// RunPod data centers are kept when they start with one of these segment lists.
    runpod_prefixes: Vec<Vec<String>>,
    /// For a continent (`europe`, or the bare `EU`): RunPod's `DataCenterRegion` for it
    /// (`EUROPE`), which the catalog (`GET /v2/catalog/datacenters`) states per data center.
    pub continent: Option<&'static str>,
}

/// RunPod's `DataCenterRegion` for each continent name this module accepts.
fn data_center_region(continent: &str) -> Option<&'static str> {
    Some(match continent {
        "north_america" => "NORTH_AMERICA",
        "south_america" => "SOUTH_AMERICA",
        "europe" => "EUROPE",
        "asia" => "ASIA",
        "middle_east" => "MIDDLE_EAST",
        "africa" => "AFRICA",
        "oceania" => "OCEANIA",
        _ => return None,
    })
}

/// The forms a region value may take, for error messages.
pub const ACCEPTED_FORMS: &str = "a PrimeIntellect region (united_states, canada, eu_west, eu_north, eu_east, asia_northeast, asia_south, australia, south_america, middle_east, africa), a RunPod data center or its prefix (US-KS-2, US-TX, EU-RO, EU), an ISO country code (US, DE, JP) or a continent (north_america, south_america, europe, asia, middle_east, africa, oceania)";

impl Region {
    /// Resolves one value, or says which forms are accepted.
    pub fn parse(input: &str) -> Result<Self> {
        let text = input.trim();
        let lower = text.to_ascii_lowercase();
        let upper = text.to_ascii_uppercase();
        let prefixes_for_countries = |countries: &[&str]| -> Vec<Vec<String>> {
            countries
                .iter()
                .flat_map(|c| match *c {
                    "US" | "CA" => vec![vec![c.to_string()]],
                    other => CONTINENTS
                        .iter()
                        .filter(|(_, regions, _)| prime_region_of(other).is_some_and(|r| regions.contains(&r)))
                        .flat_map(|(_, _, firsts)| firsts.iter().map(move |f| vec![f.to_string(), other.to_string()]))
                        .collect(),
                })
                .collect()
        };
        if let Some((region, countries)) = PRIME_REGIONS.iter().find(|(name, _)| *name == lower) {
            return Ok(Self {
                input: text.to_string(),
                prime_regions: vec![region],
                countries: None,
                runpod_prefixes: prefixes_for_countries(countries),
                continent: None,
            });
        }
        if let Some((_, regions, firsts)) = CONTINENTS.iter().find(|(name, _, _)| *name == lower) {
            return Ok(Self {
                input: text.to_string(),
                prime_regions: regions.to_vec(),
                countries: None,
                runpod_prefixes: firsts.iter().map(|f| vec![f.to_string()]).collect(),
                continent: data_center_region(&lower),
            });
        }
        if text == upper && is_country_code(text) {
            return Ok(Self {
                input: text.to_string(),
                prime_regions: prime_region_of(text).into_iter().collect(),
                countries: Some(vec![text.to_string()]),
                runpod_prefixes: prefixes_for_countries(&[text]),
                continent: None,
            });
        }
        if text == upper && is_runpod_prefix(text) {
            let segments: Vec<String> = text.split('-').map(str::to_string).collect();
            let first = segments[0].as_str();
            let (prime_regions, countries) = match runpod_country(text) {
                Some(country) => (prime_region_of(&country).into_iter().collect(), Some(vec![country])),
                None => {
                    let regions = CONTINENTS
                        .iter()
                        .filter(|(_, _, firsts)| firsts.contains(&first))
                        .flat_map(|(_, regions, _)| regions.iter().copied())
                        .collect();
                    (regions, None)
                }
            };
            // `EU` means Europe: RunPod names European data centers `EU-*` and `EUR-*`.
            let europe = matches!((first, segments.len()), ("EU" | "EUR", 1));
            let continent = europe.then_some("EUROPE");
            let runpod_prefixes =
                if europe { vec![vec!["EU".to_string()], vec!["EUR".to_string()]] } else { vec![segments] };
            return Ok(Self { input: text.to_string(), prime_regions, countries, runpod_prefixes, continent });
        }
        Err(Error::invalid("region", format!("{input:?} is not a region gpucloud knows; use {ACCEPTED_FORMS}")))
    }

    /// Whether RunPod data center `id` lies inside this region, by RunPod's catalog where it
    /// says: `catalog` maps data center ids to their `DataCenterRegion` (`GET
    /// /v2/catalog/datacenters`), which decides for a continent. Without it, or for a data
    /// center it does not list, the id's spelling decides ([`Region::has_runpod_data_center`]).
    pub fn has_runpod_data_center_in(
        &self,
        id: &str,
        catalog: Option<&std::collections::HashMap<String, String>>,
    ) -> bool {
        match (self.continent, catalog.and_then(|c| c.get(id))) {
            (Some(continent), Some(region)) => region == continent,
            _ => self.has_runpod_data_center(id),
        }
    }

    /// Whether RunPod data center `id` lies inside this region, by its spelling.
    pub fn has_runpod_data_center(&self, id: &str) -> bool {
        let segments: Vec<&str> = id.split('-').collect();
        self.runpod_prefixes
            .iter()
            .any(|prefix| prefix.len() <= segments.len() && prefix.iter().zip(&segments).all(|(p, s)| p == s))
    }

    /// Whether a PrimeIntellect offer in `region` (its `Regions` name) and `country` lies inside
    /// this region.
    pub fn has_prime_offer(&self, region: Option<&str>, country: Option<&str>) -> bool {
        let in_region = region.is_some_and(|r| self.prime_regions.contains(&r));
        match &self.countries {
            None => in_region,
            Some(countries) => country.is_some_and(|c| countries.iter().any(|k| k.eq_ignore_ascii_case(c))),
        }
    }
}

/// Resolves every value of a query's `regions`.
pub fn parse_all(inputs: &[String]) -> Result<Vec<Region>> {
    inputs.iter().map(|r| Region::parse(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_resolves_for_both_providers() {
        let eu_west = Region::parse("eu_west").unwrap();
        assert_eq!(eu_west.prime_regions, ["eu_west"]);
        assert!(eu_west.has_runpod_data_center("EU-NL-1") && eu_west.has_runpod_data_center("EU-FR-1"));
        assert!(!eu_west.has_runpod_data_center("EU-RO-1") && !eu_west.has_runpod_data_center("US-KS-2"));

        let us = Region::parse("US").unwrap();
        assert_eq!(
            (us.prime_regions.as_slice(), us.countries.as_deref()),
            (&["united_states"][..], Some(&["US".to_string()][..]))
        );
        assert!(us.has_runpod_data_center("US-TX-3") && !us.has_runpod_data_center("CA-MTL-1"));

        let eu = Region::parse("EU").unwrap();
        assert_eq!(eu.prime_regions, ["eu_west", "eu_north", "eu_east"]);
        assert!(eu.has_runpod_data_center("EU-RO-1") && eu.has_runpod_data_center("EUR-IS-1"));
        assert!(!eu.has_runpod_data_center("US-TX-3"));

        let dc = Region::parse("US-KS-2").unwrap();
        assert!(dc.has_runpod_data_center("US-KS-2") && !dc.has_runpod_data_center("US-KS-3"));
        assert!(
            dc.has_prime_offer(Some("united_states"), Some("US")) && !dc.has_prime_offer(Some("canada"), Some("CA"))
        );

        let ro = Region::parse("EU-RO").unwrap();
        assert_eq!(ro.prime_regions, ["eu_east"]);
        assert!(ro.has_runpod_data_center("EU-RO-1") && !ro.has_runpod_data_center("EU-SE-1"));

        let germany = Region::parse("DE").unwrap();
        assert!(
            germany.has_prime_offer(Some("eu_west"), Some("DE"))
                && !germany.has_prime_offer(Some("eu_west"), Some("FR"))
        );
        assert!(germany.has_runpod_data_center("EU-DE-1") && !germany.has_runpod_data_center("EU-NL-1"));

        let europe = Region::parse("Europe").unwrap();
        assert!(europe.has_runpod_data_center("EUR-NO-1") && europe.has_prime_offer(Some("eu_north"), Some("SE")));
        let canada = Region::parse("canada").unwrap();
        assert!(canada.has_runpod_data_center("CA-MTL-1") && !canada.has_runpod_data_center("US-CA-2"));
    }

    #[test]
    fn a_continent_follows_runpods_catalog_where_it_says() {
        let catalog: std::collections::HashMap<String, String> =
            [("XX-NEW-1", "EUROPE"), ("EU-RO-1", "EUROPE"), ("US-TX-3", "NORTH_AMERICA")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let europe = Region::parse("europe").unwrap();
        assert!(europe.has_runpod_data_center_in("XX-NEW-1", Some(&catalog)), "named otherwise, in Europe");
        assert!(!europe.has_runpod_data_center_in("XX-NEW-1", None), "by spelling, unknown");
        assert!(!europe.has_runpod_data_center_in("US-TX-3", Some(&catalog)));
        assert!(europe.has_runpod_data_center_in("EUR-IS-1", Some(&catalog)), "not in the catalog: by spelling");
        assert!(Region::parse("EU").unwrap().has_runpod_data_center_in("XX-NEW-1", Some(&catalog)));
        assert!(!Region::parse("US").unwrap().has_runpod_data_center_in("XX-NEW-1", Some(&catalog)));
    }

    #[test]
    fn an_unknown_value_names_the_accepted_forms() {
        for bad in ["Mars", "us-east-1", "ZZ", "", "EUROPA-1"] {
            let error = Region::parse(bad).unwrap_err();
            assert!(matches!(&error, Error::InvalidInput { field: "region", .. }), "{bad}: {error}");
            assert!(error.to_string().contains("united_states") && error.to_string().contains("US-KS-2"), "{error}");
        }
    }
}
