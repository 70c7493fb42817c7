//! The search index: tantivy in RAM, one document per product, rebuilt from the store at
//! startup and updated (commit + reader reload) by every upsert and delete, so a change is
//! searchable when the call returns.
//!
//! A query's words are analyzed like the indexed text (split on non-alphanumerics, lower-cased,
//! accents folded). Every word must match in the title (weighted ×2) or in the rest (brand,
//! category, attributes): exactly (BM25), within an edit distance that grows with the word
//! ([`typo_distance`]), or, for the last word, as a prefix of a longer one (the user may still
//! be typing). Exact matches score highest; the score is then blended with popularity by the
//! caller's function. Facet counts (categories one level below the filter, brands) cover every
//! match.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, FacetCounts, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Facet, FacetOptions, Field, INDEXED, IndexRecordOption, STRING, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TantivyDocument, TantivyError, Term,
};

use super::model::{CatalogProduct, category_levels};

/// The analyzer of searched text and queries.
const ANALYZER: &str = "cuecast_text";
/// Memory of the index writer, bytes.
const WRITER_MEMORY: usize = 50_000_000;
/// Most facet values returned per facet.
pub const MAX_FACET_VALUES: usize = 20;
/// Weight of a title match against a match in the other fields.
const TITLE_BOOST: Score = 2.0;
/// Weight of a typo or prefix match against an exact one.
const INEXACT_BOOST: Score = 0.5;

/// The edit distance a query word may be from an indexed word: none below 4 characters, 1 up
/// to 7, 2 from 8 (Levenshtein with transpositions counting 1).
pub fn typo_distance(word: &str) -> u8 {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The numeric key of a product id in the index (fast field; popularity is kept by it).
pub fn product_key(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

/// A facet value and how many matches carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FacetCount {
    /// The category path (`beauty > fragrance`) or brand.
    pub value: String,
    /// Matching products.
    pub count: u64,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Hits {
    /// Keys ([`product_key`]) of the requested page, best first.
    pub keys: Vec<u64>,
    /// Every match.
    pub total: u64,
    /// Categories one level below the filter (or top-level ones), most matches first.
    pub categories: Vec<FacetCount>,
    /// Brands, most matches first.
    pub brands: Vec<FacetCount>,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    key: Field,
    title: Field,
    body: Field,
    category: Field,
    brand: Field,
}

/// The in-memory index of the catalog.
pub struct SearchIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    analyzer: TextAnalyzer,
}

/// A function blending a product's text score with what the caller knows of it (its key).
pub type ScoreFn = Arc<dyn Fn(u64, Score) -> Score + Send + Sync>;

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Result<SearchIndex, TantivyError> {
        let mut builder = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let fields = Fields {
            id: builder.add_text_field("id", STRING),
            key: builder.add_u64_field("key", INDEXED | FAST),
            title: builder.add_text_field("title", text.clone()),
            body: builder.add_text_field("body", text),
            category: builder.add_facet_field("category", FacetOptions::default()),
            brand: builder.add_facet_field("brand", FacetOptions::default()),
        };
        let index = Index::create_in_ram(builder.build());
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(64))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build();
        index.tokenizers().register(ANALYZER, analyzer.clone());
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            reader,
            writer: Mutex::new(writer),
            fields,
            analyzer,
        })
    }

    fn document(&self, p: &CatalogProduct) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &p.id);
        doc.add_u64(f.key, product_key(&p.id));
        doc.add_text(f.title, &p.title);
        if let Some(brand) = &p.brand {
            doc.add_text(f.body, brand);
            doc.add_facet(f.brand, Facet::from_path([brand.as_str()]));
        }
        if let Some(category) = &p.category {
            doc.add_text(f.body, category);
            doc.add_facet(f.category, Facet::from_path(category_levels(category)));
        }
        for (name, value) in &p.attributes {
            doc.add_text(f.body, format!("{name} {value}"));
        }
        doc
    }

    /// Replaces (or adds) `products` and removes `deleted` ids, then commits and reloads the
    /// reader: the change is searchable on return.
    pub fn apply(
        &self,
        products: &[Arc<CatalogProduct>],
        deleted: &[String],
    ) -> Result<(), TantivyError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for id in deleted {
            writer.delete_term(Term::from_field_text(self.fields.id, id));
        }
        for p in products {
            writer.delete_term(Term::from_field_text(self.fields.id, &p.id));
            writer.add_document(self.document(p))?;
        }
        writer.commit()?;
        drop(writer);
        self.reader.reload()
    }

    /// The analyzed words of `text` (as indexed).
    fn words(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while stream.advance() {
            words.push(stream.token().text.clone());
        }
        words
    }

    /// The query for `q`: every word must match (see the module docs); `None` when `q` has no
    /// word.
    fn text_query(&self, q: &str) -> Option<Box<dyn Query>> {
        let words = self.words(q);
        let last = words.len().checked_sub(1)?;
        let musts = words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                let mut shoulds: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for (field, boost) in [(self.fields.title, TITLE_BOOST), (self.fields.body, 1.0)] {
                    let term = Term::from_field_text(field, word);
                    let mut add = |query: Box<dyn Query>, weight: Score| {
                        shoulds.push((Occur::Should, Box::new(BoostQuery::new(query, weight))));
                    };
                    add(
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                        boost,
                    );
                    let distance = typo_distance(word);
                    if distance > 0 {
                        add(
                            Box::new(FuzzyTermQuery::new(term.clone(), distance, true)),
                            boost * INEXACT_BOOST,
                        );
                    }
                    if i == last {
                        add(
                            Box::new(FuzzyTermQuery::new_prefix(term, 0, true)),
                            boost * INEXACT_BOOST,
                        );
                    }
                }
                let word_query: Box<dyn Query> = Box::new(BooleanQuery::new(shoulds));
                (Occur::Must, word_query)
            })
            .collect();
        Some(Box::new(BooleanQuery::new(musts)))
    }

    /// Searches `q` (or every product when `None`) within `category` (a normalized path): the
    /// page `offset..offset + limit` ranked by `score` (no page when `limit` is 0), the number
    /// of matches and the facet counts.
    pub fn search(
        &self,
        q: Option<&str>,
        category: Option<&str>,
        offset: usize,
        limit: usize,
        score: ScoreFn,
    ) -> Result<Hits, TantivyError> {
        let text = match q {
            Some(q) => match self.text_query(q) {
                Some(query) => query,
                None => return Ok(Hits::default()),
            },
            None => Box::new(AllQuery),
        };
        let filter = category.map(|c| Facet::from_path(category_levels(c)));
        let query: Box<dyn Query> = match &filter {
            Some(facet) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_facet(self.fields.category, facet),
                        IndexRecordOption::Basic,
                    )),
                ),
            ])),
            None => text,
        };
        let category_root = filter.clone().unwrap_or_else(Facet::root);
        let mut categories = FacetCollector::for_field("category");
        categories.add_facet(category_root.clone());
        let mut brands = FacetCollector::for_field("brand");
        brands.add_facet(Facet::root());
        let searcher = self.reader.searcher();
        let (keys, (total, category_counts, brand_counts)) = if limit == 0 {
            (
                Vec::new(),
                searcher.search(&query, &(Count, categories, brands))?,
            )
        } else {
            let top = TopDocs::with_limit(limit).and_offset(offset).tweak_score(
                move |segment: &SegmentReader| {
                    let keys = segment
                        .fast_fields()
                        .u64("key")
                        .map(|column| column.first_or_default_col(0));
                    let score = Arc::clone(&score);
                    move |doc, text_score| match &keys {
                        Ok(keys) => score(keys.get_val(doc), text_score),
                        Err(_) => text_score,
                    }
                },
            );
            let (top, counts) = searcher.search(&query, &(top, (Count, categories, brands)))?;
            let keys = top
                .into_iter()
                .map(|(_, address)| self.key_of(&searcher, address))
                .collect::<Result<Vec<u64>, TantivyError>>()?;
            (keys, counts)
        };
        Ok(Hits {
            keys,
            total: total as u64,
            categories: facet_values(&category_counts, &category_root),
            brands: facet_values(&brand_counts, &Facet::root()),
        })
    }

    fn key_of(
        &self,
        searcher: &tantivy::Searcher,
        address: DocAddress,
    ) -> Result<u64, TantivyError> {
        let column = searcher
            .segment_reader(address.segment_ord)
            .fast_fields()
            .u64("key")?
            .first_or_default_col(0);
        Ok(column.get_val(address.doc_id))
    }

    /// Documents in the index (committed).
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the index has no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The children of `parent` with their counts, most first (ties by name), at most
/// [`MAX_FACET_VALUES`].
fn facet_values(counts: &FacetCounts, parent: &Facet) -> Vec<FacetCount> {
    let mut values: Vec<FacetCount> = counts
        .get(parent.clone())
        .map(|(facet, count)| FacetCount {
            value: facet.to_path().join(super::model::CATEGORY_SEPARATOR),
            count,
        })
        .collect();
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    values.truncate(MAX_FACET_VALUES);
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::catalog::model::tests::sample;

    fn product(id: &str, title: &str, brand: &str, category: &str) -> Arc<CatalogProduct> {
        Arc::new(CatalogProduct {
            title: title.into(),
            brand: Some(brand.into()),
            category: Some(category.into()),
            ..sample(id)
        })
    }

    fn index() -> SearchIndex {
        let index = SearchIndex::new().unwrap();
        index
            .apply(
                &[
                    product("1", "Rose perfume", "Maison Rose", "beauty > fragrance"),
                    product("2", "Vanilla perfume", "Atelier", "beauty > fragrance"),
                    product("3", "Rose hand cream", "Maison Rose", "beauty > skin"),
                    product("4", "Organic bananas", "Farm", "grocery > fruit"),
                    product("5", "Crème brûlée", "Pâtisserie", "grocery > dessert"),
                ],
                &[],
            )
            .unwrap();
        index
    }

    fn plain() -> ScoreFn {
        Arc::new(|_, score| score)
    }

    fn ids(index: &SearchIndex, q: &str) -> Vec<u64> {
        let mut keys = index.search(Some(q), None, 0, 10, plain()).unwrap().keys;
        keys.sort_unstable();
        keys
    }

    fn keys(ids: &[&str]) -> Vec<u64> {
        let mut keys: Vec<u64> = ids.iter().map(|id| product_key(id)).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn typo_distance_grows_with_the_word() {
        assert_eq!(typo_distance("rose"), 1);
        assert_eq!(typo_distance("ros"), 0);
        assert_eq!(typo_distance("perfume"), 1);
        assert_eq!(typo_distance("chocolate"), 2);
    }

    #[test]
    fn exact_typo_and_prefix_matches() {
        let index = index();
        assert_eq!(index.len(), 5);
        assert_eq!(ids(&index, "rose perfume"), keys(&["1"]));
        assert_eq!(ids(&index, "rose perfme"), keys(&["1"]), "one typo");
        assert_eq!(ids(&index, "rsoe"), keys(&["1", "3"]), "a transposition");
        assert_eq!(
            ids(&index, "perf"),
            keys(&["1", "2"]),
            "prefix of the last word"
        );
        assert_eq!(ids(&index, "maison"), keys(&["1", "3"]), "brand");
        assert_eq!(ids(&index, "fragrance"), keys(&["1", "2"]), "category");
        assert_eq!(
            ids(&index, "50 ml"),
            keys(&["1", "2", "3", "4", "5"]),
            "attributes"
        );
        assert_eq!(ids(&index, "creme brulee"), keys(&["5"]), "accents folded");
        assert!(ids(&index, "tractor").is_empty());
        assert!(
            ids(&index, "perf rose tractor").is_empty(),
            "every word must match"
        );
        assert!(ids(&index, " ,. ").is_empty());
    }

    #[test]
    fn exact_beats_typo_and_the_score_function_reranks() {
        let index = index();
        let hits = index.search(Some("rose"), None, 0, 10, plain()).unwrap();
        // "rose" in the title and brand of 1 and 3; the typo-free matches come first.
        assert_eq!(hits.keys.len(), 2);
        let favourite = product_key("3");
        let boost: ScoreFn = Arc::new(move |key, score| {
            if key == favourite {
                score * 10.0
            } else {
                score
            }
        });
        let hits = index.search(Some("rose"), None, 0, 10, boost).unwrap();
        assert_eq!(hits.keys[0], favourite);
    }

    #[test]
    fn facets_count_every_match_and_drill_down() {
        let index = index();
        let hits = index.search(Some("rose"), None, 0, 1, plain()).unwrap();
        assert_eq!(hits.total, 2);
        assert_eq!(hits.keys.len(), 1);
        assert_eq!(
            hits.categories,
            vec![FacetCount {
                value: "beauty".into(),
                count: 2
            }]
        );
        assert_eq!(
            hits.brands,
            vec![FacetCount {
                value: "Maison Rose".into(),
                count: 2
            }]
        );
        let hits = index.search(None, Some("beauty"), 0, 0, plain()).unwrap();
        assert_eq!(hits.total, 3);
        assert_eq!(
            hits.categories,
            vec![
                FacetCount {
                    value: "beauty > fragrance".into(),
                    count: 2
                },
                FacetCount {
                    value: "beauty > skin".into(),
                    count: 1
                },
            ]
        );
        let page = index.search(Some("perfume"), None, 1, 10, plain()).unwrap();
        assert_eq!((page.total, page.keys.len()), (2, 1), "offset");
    }

    #[test]
    fn updates_and_deletes_are_visible_at_once() {
        let index = index();
        index
            .apply(
                &[product("4", "Organic apples", "Farm", "grocery > fruit")],
                &["1".into()],
            )
            .unwrap();
        assert_eq!(index.len(), 4);
        assert!(ids(&index, "bananas").is_empty());
        assert_eq!(ids(&index, "apples"), keys(&["4"]));
        assert_eq!(ids(&index, "perfume"), keys(&["2"]));
    }
}
