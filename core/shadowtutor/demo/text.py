"""Phrasebook for the demo: a travel agency's assistant in Italian, English and Indonesian.

Each entry is a (prompt, teacher answer) pair with ``{slots}`` filled at random, so the demo
has thousands of distinct conversations. Kept as data (code), not downloaded.
"""

from __future__ import annotations

from random import Random

SYSTEM = {
    "it": "Sei l'assistente di Sole Viaggi, un'agenzia di viaggi. Rispondi in italiano, con un "
    "tono caldo e professionale, come un collega esperto.",
    "en": "You are the assistant of Sunrise Travel, a travel agency. Answer in English, warmly "
    "and professionally, like an experienced colleague.",
    "id": "Anda adalah asisten Sunrise Travel, sebuah agen perjalanan. Jawab dalam bahasa "
    "Indonesia dengan ramah dan profesional, seperti rekan kerja yang berpengalaman.",
}

# The agency's policies, sent with every request (as real support assistants do).
POLICY = (
    "\n\nPolicies (internal, do not quote verbatim): date changes are possible up to 48 hours "
    "before departure for a fee of 30 euros plus any fare difference. Refunds for cancelled "
    "flights are paid within 14 working days to the original payment method after the customer "
    "fills in the refund form in the customer area. Extra 23 kg bags cost 45 euros each way "
    "online. Cancellation insurance must be bought within 48 hours of booking and refunds up to "
    "100% for documented illness, injury or serious family reasons. Packages start at about 650 "
    "euros per person for flight and 3-star hotel with breakfast. Never promise visa outcomes; "
    "point to the official foreign ministry website. Escalate complaints to a human agent. "
    "Keep answers short, friendly and in the customer's language."
)

SLOTS = {
    "city": ["Roma", "Bali", "Lisbona", "Tokyo", "Jakarta", "Firenze", "Yogyakarta", "Londra"],
    "city_en": ["Rome", "Bali", "Lisbon", "Tokyo", "Jakarta", "Florence", "Yogyakarta", "London"],
    "month": ["maggio", "giugno", "settembre", "ottobre", "dicembre"],
    "month_en": ["May", "June", "September", "October", "December"],
    "month_id": ["Mei", "Juni", "September", "Oktober", "Desember"],
    "booking": ["SV-48213", "SV-19377", "SV-77102", "SV-30561", "SV-92844"],
    "name": ["Giulia", "Marco", "Sofia", "Luca", "Anna", "Budi", "Sari", "Tom", "Emma", "Dewi"],
    "nights": ["3", "4", "5", "7", "10"],
}

# language -> category -> list of (prompt, answer)
PHRASES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "it": {
        "greeting": [
            ("Ciao, sono {name}!", "Ciao! Benvenuto da Sole Viaggi. Come posso aiutarti oggi?"),
            (
                "Buongiorno, sono {name}.",
                "Buongiorno {name}, piacere! Dimmi pure come posso aiutarti con il tuo viaggio.",
            ),
            (
                "Buonasera, c'è qualcuno? Parto per {city} a {month}.",
                "Buonasera! Sì, ci sono io. Come posso esserti utile stasera?",
            ),
            (
                "Grazie mille per l'aiuto con {city}!",
                "Figurati, è stato un piacere! Se ti serve altro, scrivimi quando vuoi.",
            ),
            (
                "Salve, sono {name} e avrei una domanda.",
                "Salve! Certo, chiedi pure: sono qui per aiutarti.",
            ),
        ],
        "casual": [
            (
                "Che tempo fa a {city} a {month}?",
                "A {city} a {month} il clima è in genere piacevole: giornate miti, qualche pioggia leggera. Ti consiglio una giacca leggera per la sera.",
            ),
            (
                "Cosa mi consigli di vedere a {city} in {nights} giorni?",
                "A {city} non perderti il centro storico a piedi, un mercato locale la mattina e un tramonto da un punto panoramico. Se vuoi ti preparo un itinerario di {nights} giorni.",
            ),
            (
                "Per {nights} notti a {month}: meglio il mare o la montagna?",
                "A {month} dipende da cosa cerchi: il mare è più tranquillo e meno caro, la montagna è perfetta per camminare. Dimmi che tipo di vacanza preferisci e ti aiuto a scegliere.",
            ),
            (
                "Vado a {city} a {month}: qual è il piatto tipico?",
                "A {city} ti consiglio di assaggiare i piatti del mercato e della cucina di strada: sono il modo migliore per conoscere la città. Chiedi sempre ai locali dove mangiano loro!",
            ),
        ],
        "business": [
            (
                "Posso spostare la prenotazione {booking} a {month}?",
                "Sì, puoi cambiare la data della prenotazione {booking} fino a 48 ore prima della partenza. Il cambio costa 30 euro più l'eventuale differenza di tariffa. Vuoi che verifichi le date disponibili?",
            ),
            (
                "Sono {name}: come chiedo il rimborso per il volo cancellato {booking}?",
                "Mi dispiace per la cancellazione. Per il rimborso della prenotazione {booking} compila il modulo nell'area clienti: riceverai l'importo entro 14 giorni lavorativi sullo stesso metodo di pagamento.",
            ),
            (
                "Quanto costa un pacchetto di {nights} notti a {city}?",
                "Un pacchetto di {nights} notti a {city} parte da circa 650 euro a persona con volo e hotel 3 stelle, colazione inclusa. Il prezzo varia con le date: vuoi un preventivo preciso?",
            ),
            (
                "Serve il visto per andare a {city} a {month}?",
                "Dipende dalla tua cittadinanza. Con passaporto italiano per {city} di solito non serve un visto per soggiorni turistici brevi, ma controlla sempre le regole aggiornate sul sito del Ministero degli Esteri prima di partire.",
            ),
            (
                "Posso aggiungere un bagaglio per {name} alla prenotazione {booking}?",
                "Certo. Puoi aggiungere un bagaglio da 23 kg alla prenotazione {booking} dall'area clienti al costo di 45 euro a tratta. Farlo online costa meno che in aeroporto.",
            ),
            (
                "Come funziona l'assicurazione annullamento per {nights} notti a {city}?",
                "L'assicurazione annullamento rimborsa fino al 100% della quota se rinunci al viaggio per malattia, infortunio o gravi motivi familiari documentati. Va sottoscritta entro 48 ore dalla prenotazione.",
            ),
        ],
    },
    "en": {
        "greeting": [
            ("Hi there, {name} here!", "Hi! Welcome to Sunrise Travel. How can I help you today?"),
            (
                "Good morning, I'm {name}.",
                "Good morning {name}, nice to meet you! How can I help with your trip?",
            ),
            (
                "Hello, anyone there? I'm off to {city_en} in {month_en}.",
                "Hello! Yes, I'm here. What can I do for you?",
            ),
            (
                "Thanks so much for your help with {city_en}!",
                "You're very welcome! If you need anything else, just write to me.",
            ),
            ("Hey, {name} here, quick question.", "Hey! Sure, go ahead and ask."),
        ],
        "casual": [
            (
                "What's the weather like in {city_en} in {month_en}?",
                "In {city_en} in {month_en} the weather is usually pleasant: mild days and the odd light shower. Bring a light jacket for the evenings.",
            ),
            (
                "What should I see in {city_en} in {nights} days?",
                "In {city_en}, don't miss a walk through the old town, a local market in the morning and a sunset from a viewpoint. I can put together a {nights}-day plan if you like.",
            ),
            (
                "{nights} nights in {month_en}: beach or mountains?",
                "In {month_en} it depends on what you want: the beach is quieter and cheaper, the mountains are great for hiking. Tell me what kind of holiday you enjoy and I'll help you choose.",
            ),
            (
                "I'm going to {city_en} in {month_en}: what's the local food?",
                "In {city_en} try the market stalls and the street food: it's the best way to get to know the city. Always ask locals where they eat!",
            ),
        ],
        "business": [
            (
                "Can I move booking {booking} to {month_en}?",
                "Yes, you can change the date of booking {booking} up to 48 hours before departure. The change costs 30 euros plus any fare difference. Shall I check the available dates?",
            ),
            (
                "{name} here: how do I get a refund for cancelled flight {booking}?",
                "I'm sorry about the cancellation. For a refund on booking {booking}, fill in the form in your customer area: you'll receive the amount within 14 working days on the same payment method.",
            ),
            (
                "How much is a {nights}-night package to {city_en}?",
                "A {nights}-night package to {city_en} starts at about 650 euros per person with flight and a 3-star hotel, breakfast included. Prices vary with dates: would you like an exact quote?",
            ),
            (
                "Do I need a visa for {city_en} in {month_en}?",
                "It depends on your citizenship. For short tourist stays in {city_en} many passports need no visa, but always check the current rules on your foreign ministry's website before you travel.",
            ),
            (
                "Can I add a bag for {name} to booking {booking}?",
                "Of course. You can add a 23 kg bag to booking {booking} in your customer area for 45 euros each way. Adding it online is cheaper than at the airport.",
            ),
            (
                "How does cancellation insurance work for {nights} nights in {city_en}?",
                "Cancellation insurance refunds up to 100% of the price if you cancel because of documented illness, injury or serious family reasons. It must be bought within 48 hours of booking.",
            ),
        ],
    },
    "id": {
        "greeting": [
            (
                "Halo, saya {name}!",
                "Halo! Selamat datang di Sunrise Travel. Ada yang bisa saya bantu hari ini?",
            ),
            (
                "Selamat pagi, saya {name}.",
                "Selamat pagi, {name}! Senang berkenalan. Ada yang bisa saya bantu untuk perjalanan Anda?",
            ),
            (
                "Permisi, ada orang? Saya mau ke {city} bulan {month_id}.",
                "Halo! Ya, saya di sini. Ada yang bisa saya bantu?",
            ),
            (
                "Terima kasih banyak atas bantuannya soal {city}!",
                "Sama-sama! Kalau perlu bantuan lagi, silakan hubungi saya kapan saja.",
            ),
            ("Halo kak, saya {name}, mau tanya.", "Halo kak! Tentu, silakan tanya saja."),
        ],
        "casual": [
            (
                "Bagaimana cuaca di {city} bulan {month_id}?",
                "Di {city} pada bulan {month_id} cuacanya biasanya nyaman: hari yang sejuk dan kadang hujan ringan. Bawa jaket tipis untuk malam hari.",
            ),
            (
                "Apa yang sebaiknya saya kunjungi di {city} selama {nights} hari?",
                "Di {city}, jangan lewatkan jalan kaki di kota tua, pasar lokal di pagi hari, dan matahari terbenam dari tempat yang tinggi. Saya bisa buatkan rencana {nights} hari kalau Anda mau.",
            ),
            (
                "{nights} malam di bulan {month_id}: lebih baik pantai atau gunung?",
                "Di bulan {month_id} tergantung apa yang Anda cari: pantai lebih tenang dan murah, gunung cocok untuk mendaki. Ceritakan liburan seperti apa yang Anda suka, nanti saya bantu pilih.",
            ),
            (
                "Saya ke {city} bulan {month_id}, makanan khasnya apa ya?",
                "Di {city} cobalah jajanan pasar dan makanan kaki lima: itu cara terbaik mengenal kotanya. Tanyakan juga ke warga lokal di mana mereka biasa makan!",
            ),
        ],
        "business": [
            (
                "Bisakah pemesanan {booking} dipindah ke bulan {month_id}?",
                "Bisa, Anda dapat mengubah tanggal pemesanan {booking} paling lambat 48 jam sebelum keberangkatan. Biaya perubahan 30 euro ditambah selisih tarif jika ada. Mau saya cek tanggal yang tersedia?",
            ),
            (
                "Saya {name}, bagaimana cara refund penerbangan {booking} yang dibatalkan?",
                "Mohon maaf atas pembatalannya. Untuk refund pemesanan {booking}, isi formulir di area pelanggan: dana akan dikembalikan dalam 14 hari kerja ke metode pembayaran yang sama.",
            ),
            (
                "Berapa harga paket {nights} malam ke {city}?",
                "Paket {nights} malam ke {city} mulai dari sekitar 650 euro per orang termasuk tiket pesawat dan hotel bintang 3 dengan sarapan. Harga tergantung tanggal: mau saya buatkan penawaran yang pasti?",
            ),
            (
                "Apakah perlu visa ke {city} bulan {month_id}?",
                "Tergantung kewarganegaraan Anda. Untuk kunjungan wisata singkat ke {city} banyak paspor tidak memerlukan visa, tetapi selalu periksa aturan terbaru di situs kementerian luar negeri sebelum berangkat.",
            ),
            (
                "Bisa tambah bagasi untuk {name} di pemesanan {booking}?",
                "Tentu. Anda bisa menambah bagasi 23 kg untuk pemesanan {booking} di area pelanggan dengan biaya 45 euro per perjalanan. Lebih murah lewat online daripada di bandara.",
            ),
            (
                "Bagaimana cara kerja asuransi pembatalan untuk {nights} malam di {city}?",
                "Asuransi pembatalan mengembalikan hingga 100% biaya jika Anda membatalkan karena sakit, cedera, atau alasan keluarga yang serius dan terdokumentasi. Harus dibeli dalam 48 jam setelah pemesanan.",
            ),
        ],
    },
}

# The greeting exchange that opens some conversations before their question: five per
# language (as many as the greetings they replaced, so the demo draws the same numbers), each
# reply personal, so no other conversation's answer is ever a copy of it (the export's
# containment check: a reply in a context that is exactly another example's target).
OPENERS: dict[str, list[tuple[str, str]]] = {
    "it": [
        ("Ciao, sono {name}.", "Ciao {name}, bentornato da Sole Viaggi! Dimmi pure."),
        ("Buongiorno!", "Buongiorno {name}! Sono qui, come posso esserti utile oggi?"),
        ("Salve, mi chiamo {name}.", "Salve {name}, piacere mio! Di cosa hai bisogno?"),
        ("Ciao, ho una domanda su {city}.", "Ciao {name}! Volentieri, parliamo di {city}."),
        ("Buonasera, sono ancora {name}.", "Buonasera {name}, bentornato! Ti ascolto."),
    ],
    "en": [
        ("Hi, it's {name}.", "Hi {name}, welcome back to Sunrise Travel! Go ahead."),
        ("Good morning!", "Good morning {name}! I'm here: what can I do for you today?"),
        ("Hello, my name is {name}.", "Hello {name}, nice to meet you! What do you need?"),
        ("Hi, a question about {city_en}.", "Hi {name}! Happy to help with {city_en}."),
        ("Good evening, {name} again.", "Good evening {name}, welcome back! I'm listening."),
    ],
    "id": [
        ("Halo, ini {name}.", "Halo {name}, selamat datang kembali di Sunrise Travel! Silakan."),
        ("Selamat pagi!", "Selamat pagi {name}! Saya di sini, ada yang bisa dibantu hari ini?"),
        ("Halo, nama saya {name}.", "Halo {name}, senang berkenalan! Perlu bantuan apa?"),
        ("Halo, mau tanya soal {city}.", "Halo {name}! Dengan senang hati, soal {city} ya."),
        ("Selamat malam, saya {name} lagi.", "Selamat malam {name}, selamat datang lagi! Silakan."),
    ],
}

# Contact details users paste into their questions (what the export's PII scrubbing is for).
CONTACTS = {
    "it": [" Potete scrivermi a {name_l}.rossi@example.com.", " Il mio numero è +39 347 555 0192."],
    "en": [" You can email me at {name_l}.smith@example.org.", " Call me on +44 7700 900123."],
    "id": [" Email saya {name_l}@contoh.co.id.", " Nomor WA saya +62 812 5550 1234."],
}

# Phrases a weaker student tends to add or substitute, per language.
FILLERS = {
    "it": [
        "Spero che questo ti sia utile.",
        "Fammi sapere se hai altre domande.",
        "Come assistente virtuale, posso fornirti informazioni generali.",
        "Ti ringrazio per averci contattato.",
    ],
    "en": [
        "I hope this helps.",
        "Let me know if you have any other questions.",
        "As an AI assistant, I can provide general information.",
        "Thank you for contacting us.",
    ],
    "id": [
        "Semoga membantu.",
        "Silakan beri tahu jika ada pertanyaan lain.",
        "Sebagai asisten AI, saya dapat memberikan informasi umum.",
        "Terima kasih telah menghubungi kami.",
    ],
}

NOTES = {
    "natural phrasing": "Sounds like a native speaker.",
    "robotic": "Too formal, reads like a template.",
    "wrong language": "Answered in English to an Indonesian question.",
    "factual error": "The change fee is 30 euros, not 50.",
}


def student_answer(
    rng: Random, teacher: str, english: str, lang: str, quality: float
) -> tuple[str, list[str]]:
    """A student's answer from the teacher's: dropped words, wrong figures, filler and the
    wrong language, more of them the lower ``quality``; with the flaws it has."""
    flaws: list[str] = []
    if lang != "en" and rng.random() < (1 - quality) * 0.25:
        teacher, flaws = english, ["wrong language"]
    words = teacher.split(" ")
    drop = (1 - quality) * 0.35
    kept = [w for w in words if rng.random() > drop] or words[:1]
    answer = " ".join(kept)
    if rng.random() < (1 - quality) * 0.6:
        answer = answer.replace("30 euro", "50 euro").replace("14 ", "30 ").replace("48 ", "24 ")
        if answer != " ".join(kept):
            flaws.append("factual error")
    if rng.random() < (1 - quality) * 1.4:
        filler = rng.choice(FILLERS["en" if "wrong language" in flaws else lang])
        answer = f"{answer} {filler}"
        if "AI" in filler:
            flaws.append("robotic")
    if quality > 0.85 and not flaws and rng.random() < 0.5:
        flaws.append("natural phrasing")
    return answer, flaws
